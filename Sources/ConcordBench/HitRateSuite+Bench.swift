extension HitRateSuite.Configuration {
    /// A tenth of the keyspace and requests, for a smoke test.
    package static var quick: HitRateSuite.Configuration {
        var configuration = HitRateSuite.Configuration()
        configuration.keyspace = 20_000
        configuration.requests = 200_000
        configuration.scanEvery = 16_000
        configuration.scanLength = 4_000
        configuration.shiftEvery = 20_000
        return configuration
    }
}

extension HitRateSuite {
    /// The suite's results as bench figures: L1's hit ratio (MemoryCache with the shard count a
    /// `HybridCache` uses) next to W-TinyLFU of the same size, with LRU and Bélády's optimum in
    /// the note.
    package func benchResults() -> [BenchResult] {
        run().map { result in
            let value = result.memoryCacheSharded
            let percent = BenchFormat.number(result.cacheFraction * 100, digits: 0)
            let gapClosed = result.optimal == result.lru ? 0 : (value - result.lru) / (result.optimal - result.lru)
            var figure = BenchResult(
                suite: "hitrate",
                name: "\(result.trace), cache \(percent)% (\(result.cacheSize) entries)",
                value: .init(exactly: value),
                unit: "hit ratio",
                reference: .init(exactly: result.wTinyLFU),
                ratio: result.wTinyLFU > 0 ? value / result.wTinyLFU : nil,
                target: "≥ W-TinyLFU",
                met: value >= result.wTinyLFU,
                note: "LRU \(BenchFormat.number(result.lru, digits: 4)), optimal \(BenchFormat.number(result.optimal, digits: 4)), gap to optimal \(BenchFormat.number(result.optimal - value, digits: 4)) "
                    + "(closes \(BenchFormat.number(gapClosed * 100, digits: 0))% of LRU→optimal); "
                    + "1 shard \(BenchFormat.number(result.memoryCache, digits: 4)), \(result.shardCount) shard(s) in force for the 16 HybridCache asks"
            )
            figure.series = ["cacheFraction": result.cacheFraction, "optimal": result.optimal, "singleShard": result.memoryCache]
            figure.curve = result.trace
            return figure
        }
    }
}
