import Concord
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The `memory` suite: heap bytes per L1 entry with a million small entries (11-byte keys,
/// `Int` values), for `MemoryCache` alone and for `HybridCache`'s L1, next to the bytes of the
/// key and value themselves.
///
/// Each cache is measured right after filling it to its bound, and again after as many more
/// distinct keys went through it (churn): that is the footprint of a cache in steady state,
/// frequency sketch included.
struct MemorySuite: Sendable {
    /// What to measure.
    struct Configuration: Sendable {
        var entries = 1_000_000
        /// Overhead allowed beyond key and value, per entry.
        var maxOverheadBytes = 150.0

        init() {}

        static var quick: Configuration {
            var configuration = Configuration()
            configuration.entries = 100_000
            return configuration
        }
    }

    var configuration: Configuration
    var logger: Logger

    init(configuration: Configuration = .init(), logger: Logger = BenchLogging.quietLogger(label: "concord.bench.memory")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Key `i`: 11 UTF-8 bytes, stored inline in the `String` (no heap allocation of its own).
    @inline(__always)
    static func key(_ index: Int) -> String {
        "key:" + String(1_000_000 + index)
    }

    static let keyBytes = 11
    static let valueBytes = MemoryLayout<Int>.size

    func run() async throws -> [BenchResult] {
        guard Self.heapBytesInUse() != nil else {
            throw BenchError("the memory suite needs glibc's malloc_stats to read heap usage")
        }
        let count = configuration.entries
        var results: [BenchResult] = []

        // MemoryCache alone.
        do {
            let before = Self.heapBytesInUse()!
            let cache = MemoryCache<String, Int>(configuration: MemoryCacheConfiguration(maxEntries: count))
            for index in 0..<count { cache.set(Self.key(index), MemoryCacheItem(value: index), now: .zero) }
            let filled = (Self.heapBytesInUse()! - before, cache.count)
            for index in count..<(2 * count) { cache.set(Self.key(index), MemoryCacheItem(value: index), now: .zero) }
            let churned = (Self.heapBytesInUse()! - before, cache.count)
            results.append(result("MemoryCache<String, Int>, \(count) entries, filled", filled))
            results.append(result("MemoryCache<String, Int>, \(count) entries, after \(count) more keys", churned))
            withExtendedLifetime(cache) {}
        }

        // HybridCache's L1: the same keys and values, through the API.
        do {
            let before = Self.heapBytesInUse()!
            var cacheConfiguration = HybridCacheConfiguration(cacheName: "bench-memory", nodeID: "bench-memory")
            cacheConfiguration.memory = MemoryCacheConfiguration(maxEntries: count)
            cacheConfiguration.defaultEntryOptions.duration = .seconds(3600)
            let cache = try HybridCache(configuration: cacheConfiguration, logger: logger)
            for index in 0..<count { try await cache.set(Self.key(index), index) }
            let filled = (Self.heapBytesInUse()! - before, cache.statistics.memory.entries)
            for index in count..<(2 * count) { try await cache.set(Self.key(index), index) }
            let churned = (Self.heapBytesInUse()! - before, cache.statistics.memory.entries)
            results.append(result("HybridCache L1, \(count) entries, filled", filled))
            results.append(result("HybridCache L1, \(count) entries, after \(count) more keys", churned))
            withExtendedLifetime(cache) {}
        }
        return results
    }

    private func result(_ name: String, _ measurement: (bytes: Int, entries: Int)) -> BenchResult {
        let perEntry = Double(measurement.bytes) / Double(max(1, measurement.entries))
        let payload = Double(Self.keyBytes + Self.valueBytes)
        let overhead = perEntry - payload
        return BenchResult(
            suite: "memory",
            name: name,
            value: .init(exactly: perEntry),
            unit: "B/entry",
            reference: .init(exactly: payload),
            ratio: perEntry / payload,
            target: "overhead <= \(BenchFormat.adaptive(configuration.maxOverheadBytes)) B",
            met: overhead <= configuration.maxOverheadBytes,
            note: "overhead \(BenchFormat.adaptive(overhead)) B/entry; \(measurement.entries) entries; reference: \(Self.keyBytes)-byte key + \(Self.valueBytes)-byte value; heap in use from malloc_stats"
        )
    }

    /// Bytes the allocator has handed out and not taken back, over every arena, mmapped blocks
    /// included: the "in use bytes" total of glibc's `malloc_stats`.
    ///
    /// Swift's Glibc module does not export `mallinfo2`, and calling it through `dlsym` would need
    /// its struct-return convention; `malloc_stats` takes and returns nothing, so it is safe to
    /// call through a C function pointer. It prints to stderr, which is pointed at a temp file
    /// for the call.
    static func heapBytesInUse() -> Int? {
        #if canImport(Glibc)
        // A null handle is RTLD_DEFAULT on glibc: search the whole process.
        guard let symbol = dlsym(nil, "malloc_stats") else { return nil }
        let mallocStats = unsafeBitCast(symbol, to: (@convention(c) () -> Void).self)
        var template = Array("/tmp/concord-bench-malloc-XXXXXX".utf8CString)
        let file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard file >= 0 else { return nil }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer {
            close(file)
            unlink(path)
        }
        fflush(nil)
        let savedError = dup(STDERR_FILENO)
        guard savedError >= 0 else { return nil }
        dup2(file, STDERR_FILENO)
        mallocStats()
        fflush(nil)
        dup2(savedError, STDERR_FILENO)
        close(savedError)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        // The last "in use bytes" line is the total over arenas, mmapped blocks included.
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("in use bytes") }),
              let number = line.split(separator: "=").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
        else { return nil }
        return number
        #else
        return nil
        #endif
    }
}
