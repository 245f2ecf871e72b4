import ConcordRedis
import Foundation
import Logging
import Synchronization

/// What to measure in `measureRedisGetThroughput`: one server, one value size, one concurrency.
public struct RedisThroughputOptions: Sendable {
    public var host: String
    public var port: Int
    public var password: String?
    /// Concurrent callers on the one pipelined `RedisClient` connection, and `-c` for redis-benchmark.
    public var concurrency: Int
    /// Total GETs (the count bound), and `-n` for redis-benchmark.
    public var requests: Int
    /// The client run stops after this even if `requests` are not done (the time bound).
    public var maxDuration: Duration
    /// Bytes of the value read back, and `-d` for redis-benchmark.
    public var valueSize: Int
    /// Run the callers on the client's event loop (`RedisClient.taskExecutor`) instead of the global pool.
    public var pinCallersToEventLoop: Bool
    /// Also run redis-benchmark for the reference figure.
    public var runReference: Bool
    public var redisBenchmarkExecutable: String

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        password: String? = nil,
        concurrency: Int = 1,
        requests: Int = 200_000,
        maxDuration: Duration = .seconds(30),
        valueSize: Int = 3,
        pinCallersToEventLoop: Bool = false,
        runReference: Bool = true,
        redisBenchmarkExecutable: String = "redis-benchmark"
    ) {
        self.host = host
        self.port = port
        self.password = password
        self.concurrency = concurrency
        self.requests = requests
        self.maxDuration = maxDuration
        self.valueSize = valueSize
        self.pinCallersToEventLoop = pinCallersToEventLoop
        self.runReference = runReference
        self.redisBenchmarkExecutable = redisBenchmarkExecutable
    }
}

/// GET throughput of `RedisClient` next to redis-benchmark's, measured against the same server in the same run.
public struct RedisThroughputResult: Sendable, CustomStringConvertible {
    public var concurrency: Int
    public var valueSize: Int
    public var pinnedToEventLoop: Bool
    public var operations: Int
    public var errors: Int
    public var elapsed: Duration
    public var clientOpsPerSecond: Double
    /// redis-benchmark's requests per second, when it ran.
    public var referenceOpsPerSecond: Double?

    /// client / reference; above 1 means the client is faster.
    public var ratio: Double? {
        guard let referenceOpsPerSecond, referenceOpsPerSecond > 0 else { return nil }
        return clientOpsPerSecond / referenceOpsPerSecond
    }

    public var description: String {
        let reference = referenceOpsPerSecond.map { String(format: "%.0f", $0) } ?? "n/a"
        let ratio = ratio.map { String(format: "%.2fx", $0) } ?? "n/a"
        return String(
            format: "GET c=%d d=%d%@: RedisClient %.0f ops/s (%d ops, %d errors), redis-benchmark %@ ops/s, ratio %@",
            concurrency, valueSize, pinnedToEventLoop ? " (callers on the event loop)" : "", clientOpsPerSecond, operations, errors, reference, ratio)
    }
}

/// Measures GET ops/s on one `RedisClient` with `concurrency` callers, bounded by `requests` and
/// `maxDuration`, then runs `redis-benchmark -t get -c N -n M -P 1 -d SIZE -q --csv` for the reference.
///
/// Both read the same key (`key:__rand_int__`, redis-benchmark's literal key without `-r`), set
/// beforehand to a value of `valueSize` bytes, so both get identical replies.
public func measureRedisGetThroughput(
    _ options: RedisThroughputOptions,
    logger: Logger = Logger(label: "concord.bench.redis")
) async throws -> RedisThroughputResult {
    var configuration = RedisConfiguration(host: options.host, port: options.port, password: options.password)
    // Throughput, not latency, is measured; do not let a noisy machine turn a slow reply into an error.
    configuration.commandTimeout = .seconds(10)
    let client = RedisClient(configuration: configuration, logger: logger)
    let key: RedisArgument = "key:__rand_int__"
    let concurrency = max(options.concurrency, 1)

    var result = try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        defer { group.cancelAll() }
        try await client.waitUntilConnected(timeout: .seconds(10))
        _ = try await client.send("SET", key, RedisArgument([UInt8](repeating: UInt8(ascii: "x"), count: options.valueSize)))
        for _ in 0..<min(1_000, options.requests) {
            _ = try await client.send("GET", key)
        }

        let counters = Counters(requests: options.requests)
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: options.maxDuration)
        let done = await withTaskGroup(of: Int.self) { workers in
            for _ in 0..<concurrency {
                workers.addTask(executorPreference: options.pinCallersToEventLoop ? client.taskExecutor : nil) {
                    var count = 0
                    // Checking the clock every 64 operations keeps it off the measured path.
                    while counters.remaining.subtract(1, ordering: .relaxed).newValue >= 0 {
                        do {
                            _ = try await client.send("GET", key)
                        } catch {
                            counters.errors.add(1, ordering: .relaxed)
                        }
                        count += 1
                        if count & 63 == 0, clock.now >= deadline { break }
                    }
                    return count
                }
            }
            return await workers.reduce(0, +)
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return RedisThroughputResult(
            concurrency: concurrency, valueSize: options.valueSize, pinnedToEventLoop: options.pinCallersToEventLoop, operations: done, errors: counters.errors.load(ordering: .relaxed),
            elapsed: elapsed, clientOpsPerSecond: seconds > 0 ? Double(done) / seconds : 0, referenceOpsPerSecond: nil)
    }

    if options.runReference {
        result.referenceOpsPerSecond = try runRedisBenchmark(options, concurrency: concurrency)
    }
    return result
}

/// Shared by the worker tasks of one measurement.
private final class Counters: Sendable {
    let remaining: Atomic<Int>
    let errors = Atomic<Int>(0)
    init(requests: Int) { remaining = Atomic(requests) }
}

/// Runs redis-benchmark and returns the GET requests per second from its CSV output.
func runRedisBenchmark(_ options: RedisThroughputOptions, concurrency: Int) throws -> Double {
    let process = Process()
    if options.redisBenchmarkExecutable.contains("/") {
        process.executableURL = URL(fileURLWithPath: options.redisBenchmarkExecutable)
        process.arguments = []
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [options.redisBenchmarkExecutable]
    }
    var arguments = [
        "-h", options.host, "-p", String(options.port), "-t", "get", "-c", String(concurrency), "-n", String(options.requests),
        "-P", "1", "-d", String(options.valueSize), "-q", "--csv",
    ]
    if let password = options.password { arguments += ["-a", password] }
    process.arguments! += arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    // "GET","123456.79",... after a header line.
    for line in text.split(whereSeparator: \.isNewline) {
        let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        if fields.count >= 2, fields[0] == "GET", let rps = Double(fields[1]) {
            return rps
        }
    }
    throw RedisBenchmarkError(output: text, status: process.terminationStatus)
}

/// redis-benchmark failed or printed something unexpected.
public struct RedisBenchmarkError: Error, CustomStringConvertible {
    public let output: String
    public let status: Int32
    public var description: String { "redis-benchmark exited with \(status): \(output)" }
}
