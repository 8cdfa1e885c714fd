/// Settings that shape how the runner applies and rolls back migrations.
public struct MigratorOptions: Sendable {
    /// How long to poll for the runner lock before giving up, in seconds.
    public var lockWait: Double = 60
    /// The `lock_timeout` each migration runs under, in seconds.
    public var lockTimeout: Double = 5
    /// How many times a migration that hit `lock_timeout` is tried again.
    public var lockRetries = 3
    /// The first backoff after a lock timeout, in seconds; it doubles with each retry.
    public var retryBackoff: Double = 0.5
    public var allowOutOfOrder = false
    public var dryRun = false
    public var singleTransaction = false
    /// Run down files that changed since their migration was applied.
    public var force = false
    /// Roll back through a migration without a down file as an empty step, recording it as forced.
    public var allowMissingDown = false
    /// Let down steps drop tables or columns that hold rows; each is recorded as a `data_loss_allowed` event.
    public var allowDataLoss = false

    public init() {}
}
