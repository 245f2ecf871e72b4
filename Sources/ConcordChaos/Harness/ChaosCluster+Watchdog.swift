import ConcordProcess
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The watchdog that outlives a harness killed outright: it stops the servers and removes the
/// run's temp dirs; and the pid files it reads.
extension ChaosCluster {
    /// Nodes end themselves when the harness dies (`--parent-pid`); redis-server cannot, so a
    /// small shell child waits for the harness to disappear, even by SIGKILL, and then kills
    /// the server whose pid the harness last wrote down. The pid is checked to still be a
    /// redis-server, so a recycled pid is never killed. It removes the run's temp dirs only
    /// once the nodes are gone (at most 30 s), because a node shutting down may still write
    /// into them (its SQLite origin's journal) and leave a dir behind.
    func startRedisWatchdog() throws {
        recordRedisPID()
        // Temp dirs too: the harness's own (origin, pid file) and the servers'.
        let leftovers = ([redisPIDFile.deletingLastPathComponent().path] + state.withLock { redisServers($0) }.map(\.directory.path))
            .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            .joined(separator: " ")
        let script = """
            while kill -0 \(getpid()) 2>/dev/null; do sleep 0.5; done
            for pid in $(cat '\(redisPIDFile.path)' 2>/dev/null); do
              if grep -q -e redis-server -e redis-sentinel -e memcached "/proc/$pid/cmdline" 2>/dev/null; then kill -9 "$pid"; fi
            done
            i=0
            while [ $i -lt 60 ]; do
              alive=0
              for pid in $(cat '\(nodePIDFile.path)' 2>/dev/null); do
                if grep -q concord "/proc/$pid/cmdline" 2>/dev/null; then alive=1; fi
              done
              [ $alive = 0 ] && break
              sleep 0.5; i=$((i+1))
            done
            rm -rf \(leftovers)
            \(network?.cleanupScript() ?? "")
            """
        _ = try supervisor.launch(name: "redis-watchdog", executable: "/bin/sh", arguments: ["-c", script])
    }

    /// The node pids, for the watchdog (written at every node start).
    var nodePIDFile: URL { redisPIDFile.deletingLastPathComponent().appendingPathComponent("nodes.pid") }

    /// Writes down the running nodes' pids for the watchdog.
    func recordNodePIDs() {
        let pids = state.withLock { $0.processes.values.filter(\.isRunning).map { "\($0.processIdentifier)" } }
        try? Data(pids.joined(separator: " ").utf8).write(to: nodePIDFile, options: .atomic)
    }

    /// Writes down the current redis-server (Sentinels included) and memcached pids for the
    /// watchdog (after every restart).
    func recordRedisPID() {
        let pids = state.withLock { state in
            (redisServers(state).map(\.processIdentifier) + state.memcached.map(\.processIdentifier)).compactMap { $0 }
        }
        let pid = pids.map { "\($0)" }.joined(separator: " ")
        try? Data(pid.utf8).write(to: redisPIDFile, options: .atomic)
    }

    /// Every Redis process of the topology: the one server, or the data servers and Sentinels.
    func redisServers(_ state: State) -> [RedisServer] {
        if let sentinel = state.sentinel { return sentinel.servers + sentinel.sentinels }
        if let cluster = state.redisCluster { return cluster.servers }
        return state.redis.map { [$0] } ?? []
    }
}
