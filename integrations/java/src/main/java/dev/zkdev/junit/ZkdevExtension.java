package dev.zkdev.junit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;

/** The JUnit 5 extension behind {@link ZkdevEnsemble}. */
public final class ZkdevExtension implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback,
    ParameterResolver {
  private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(ZkdevExtension.class);

  @Override
  public void beforeAll(ExtensionContext context) throws IOException {
    ZkdevEnsemble spec = spec(context);
    // Short: a cluster's control socket lives in its directory, and a socket path has about 100 bytes.
    Path home = Files.createTempDirectory("junit-zkdev-");
    Ensemble ensemble = new Ensemble(Ensemble.findZkdev(), home, "junit");
    List<String> flags = new ArrayList<>(List.of("--nodes", Integer.toString(spec.voters()), "--observers",
        Integer.toString(spec.observers()), "--profile", spec.profile(), "--slot", "auto", "--owner",
        Long.toString(ProcessHandle.current().pid())));
    if (spec.tls()) {
      flags.add("--tls");
    }
    if (spec.net()) {
      flags.add("--net");
    }
    if (spec.diskFaults()) {
      flags.add("--disk-faults");
    }
    if (spec.reconfig()) {
      flags.add("--reconfig");
    }
    context.getStore(NS).put(Ensemble.class, ensemble);
    ensemble.up(flags);
  }

  @Override
  public void afterAll(ExtensionContext context) throws IOException {
    Ensemble ensemble = context.getStore(NS).remove(Ensemble.class, Ensemble.class);
    if (ensemble == null) {
      return;
    }
    try {
      ensemble.down(true);
    } finally {
      try (Stream<Path> walk = Files.walk(ensemble.home())) {
        walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  @Override
  public void beforeEach(ExtensionContext context) {
    if (spec(context).resetEachTest()) {
      ensemble(context).reset();
    }
  }

  @Override
  public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
    return parameter.getParameter().getType() == Ensemble.class;
  }

  @Override
  public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
    return ensemble(context);
  }

  private static Ensemble ensemble(ExtensionContext context) {
    Ensemble ensemble = context.getStore(NS).get(Ensemble.class, Ensemble.class);
    if (ensemble == null) {
      throw new ParameterResolutionException("no zkdev ensemble: annotate the test class with @ZkdevEnsemble");
    }
    return ensemble;
  }

  private static ZkdevEnsemble spec(ExtensionContext context) {
    for (Class<?> c = context.getRequiredTestClass(); c != null; c = c.getEnclosingClass()) {
      ZkdevEnsemble spec = c.getAnnotation(ZkdevEnsemble.class);
      if (spec != null) {
        return spec;
      }
    }
    throw new IllegalStateException("ZkdevExtension needs @ZkdevEnsemble on the test class");
  }
}
