/// CallsConfig: the typed configuration of `callsctl serve` (TOML file < `CALLSCTL_...` environment < flags), its
/// validation, and the generators that write agreeing configs for a whole calls deployment.
public enum CallsConfigModule {}
