package dev.zkdev.junit;

/** A zkdev command failed, or printed a document this extension cannot read. */
public class ZkdevException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final int exitCode;

  public ZkdevException(String message) {
    this(message, 0);
  }

  public ZkdevException(String message, int exitCode) {
    super(message);
    this.exitCode = exitCode;
  }

  /** zkdev's exit code (1 the operation failed, 2 bad usage, 3 environment); 0 for an unreadable document. */
  public int exitCode() {
    return exitCode;
  }
}
