package dev.zkdev.junit;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A real ZooKeeper ensemble for a test class, made by zkdev before the first test (on a free block of ports,
 * owned by this JVM: if the JVM dies, even killed, zkdev stops and purges it) and purged after the last. Tests
 * and lifecycle methods take an {@link Ensemble} parameter. Each test starts from a clean ensemble
 * ({@code zkdev reset}: no znode but /zookeeper, no session, no fault; no JVM restarted) unless
 * {@code resetEachTest = false}.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@ExtendWith(ZkdevExtension.class)
public @interface ZkdevEnsemble {
  /** Voting participants. */
  int voters() default 1;

  int observers() default 0;

  /** A zkdev profile name or file. */
  String profile() default "fast";

  /** Every node also serves TLS ({@link Ensemble#tls()} names the files). */
  boolean tls() default false;

  /** Link proxies, so partition, isolate, link and heal work. */
  boolean net() default false;

  /** Disk faults ({@link Ensemble#disk}). */
  boolean diskFaults() default false;

  /** Dynamic reconfiguration ({@link Ensemble#add}, {@link Ensemble#remove}). */
  boolean reconfig() default false;

  /** Reset the ensemble before each test. */
  boolean resetEachTest() default true;
}
