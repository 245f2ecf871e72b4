extension Workload {
    /// After a heal: reads, on every node, the keys mutated since `since` and the hottest
    /// (`probeKeys(mutatedSince:)`), round after round with only `configuration.probePause`
    /// between rounds, until each node has returned, for each key, at least the version
    /// acknowledged when probing began; or until `timeout`, or `maxProbeRounds` rounds. Returns
    /// how long that took, or nil. The reads are recorded as probes; the checker measures
    /// convergence from them (C5: the heal to the first read serving the latest version), this
    /// answer is only for the progress line and the report's fault details.
    package func probeConvergence(since: Duration, timeout: Duration) async -> Duration? {
        let start = recorder.now()
        let probed = probeKeys(mutatedSince: since)
        let wanted = Dictionary(uniqueKeysWithValues: probed.map { ($0, latestAcked($0)) })
        var pending = Dictionary(uniqueKeysWithValues: targets.indices.map { ($0, probed) })
        var rounds = 0
        while !Task.isCancelled, rounds < max(1, configuration.maxProbeRounds) {
            rounds += 1
            pending = await withTaskGroup(of: (Int, [String]).self) { group in
                for (index, keys) in pending where !keys.isEmpty {
                    group.addTask {
                        var lagging: [String] = []
                        for key in keys {
                            let read = await self.read(target: index, key: key, purpose: .probe)
                            guard let version = read.outcome.version, version >= wanted[key] ?? 0 else {
                                lagging.append(key)
                                continue
                            }
                        }
                        return (index, lagging)
                    }
                }
                var next: [Int: [String]] = [:]
                for await (index, lagging) in group where !lagging.isEmpty { next[index] = lagging }
                return next
            }
            let elapsed = recorder.now() - start
            if pending.isEmpty { return elapsed }
            if elapsed > timeout { return nil }
            try? await Task.sleep(for: configuration.probePause)
        }
        return nil
    }

    /// Once everything has healed and settled: one read of every key on every node (again
    /// while it is answered stale-flagged, a bounded number of times), recorded as final reads
    /// (the checker's evidence for C6, which judges the last of them). Returns the ids of nodes that failed
    /// any of them, with the first error.
    package func finalReads() async -> [String: String] {
        await withTaskGroup(of: (String, String?).self) { group in
            for index in targets.indices {
                group.addTask {
                    var firstError: String?
                    for key in self.keys {
                        var read = await self.read(target: index, key: key, purpose: .final)
                        var rereads = 0
                        while read.stale, rereads < self.configuration.finalStaleRereads, !Task.isCancelled {
                            rereads += 1
                            try? await Task.sleep(for: self.configuration.finalStaleRereadPause)
                            read = await self.read(target: index, key: key, purpose: .final)
                        }
                        if case .failed(let message) = read.outcome, firstError == nil {
                            firstError = "\(key): \(message)"
                        }
                    }
                    return (self.targets[index].id, firstError)
                }
            }
            var failures: [String: String] = [:]
            for await (node, error) in group {
                if let error { failures[node] = error }
            }
            return failures
        }
    }
}
