import ArgumentParser
import Freshet

struct Cluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Start or stop the persistent development cluster.",
        subcommands: [Start.self, Stop.self])

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start",
            abstract: "Create and start the cluster if needed; print its connection URL.")

        @Option(help: "The cluster's directory.")
        var path = ".pgdata"

        @Flag(inversion: .prefixedNo, help: "Whether a new cluster syncs to disk; --no-fsync suits benchmarks.")
        var fsync = true

        func run() throws {
            let cluster = try PostgresCluster.persistent(at: path, durable: fsync)
            print(cluster.url(database: cluster.cronDatabase))
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop the cluster, keeping its data.")

        @Option(help: "The cluster's directory.")
        var path = ".pgdata"

        func run() throws {
            try PostgresCluster.stopPersistent(at: path)
        }
    }
}
