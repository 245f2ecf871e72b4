import AsyncHTTPClient
import Concord
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An origin that is an upstream HTTP service, the way a reverse proxy loads from its backend:
/// a miss is a GET of the URL template with the key filled in, on a bounded pool of
/// AsyncHTTPClient connections. 200 is the value, 404 and 410 are absent, 304 answers a
/// revalidation (`If-None-Match`/`If-Modified-Since` from the last 200's `ETag`/`Last-Modified`)
/// with `notModified()`, and anything else, a timeout or a body over the value limit is a
/// factory error, so fail-safe applies. With `respectsCacheControl`, the answer's
/// `Cache-Control` sets the entry's duration (`s-maxage`, `max-age`) or keeps it out of the
/// cache (`no-store`, `no-cache`, `private`, a zero age).
public final class HTTPOrigin: Origin {
    /// Pool, deadline, value limit and cache-control handling.
    public struct Configuration: Sendable, Equatable {
        /// Connections kept to the upstream; more concurrent misses wait for one of them.
        public var maxConnections: Int = 8
        /// A load, connecting and the whole body included, must finish within this.
        public var timeout: Duration = .seconds(5)
        /// Bodies larger than this are refused (the node's `--max-value-bytes`).
        public var maxValueBytes: Int = 8 * 1024 * 1024
        /// Use the upstream's `Cache-Control` for the entry's duration.
        public var respectsCacheControl: Bool = false
        /// Validators kept for revalidation, one per key; past this, the oldest are dropped
        /// (their keys then reload with an unconditional GET).
        public var maxValidators: Int = 100_000

        public init() {}
    }

    public let template: OriginURLTemplate
    public let configuration: Configuration
    private let http: HTTPClient
    private let validators: Mutex<ValidatorTable>
    private let logger: Logger

    public init(
        template: String,
        configuration: Configuration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "concord.origin")
    ) throws(HTTPOriginError) {
        self.template = try OriginURLTemplate(template)
        self.configuration = configuration
        self.logger = logger
        self.validators = Mutex(ValidatorTable(capacity: max(0, configuration.maxValidators)))
        var transport = HTTPClient.Configuration()
        transport.redirectConfiguration = .disallow
        transport.decompression = .disabled
        transport.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.maxConnections)
        )
        // A refused connection is an answer (the upstream is down): fail at once, so fail-safe
        // serves the last value, rather than retry connecting until the deadline.
        transport.connectionPool.retryConnectionEstablishment = false
        transport.timeout = .init(connect: .nanoseconds(max(1, configuration.timeout.nanosecondsClamped)))
        http = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: transport, backgroundActivityLogger: logger)
    }

    deinit {
        // The transport keeps itself alive until its connections are closed.
        http.shutdown { _ in }
    }

    public func load(_ key: String) async throws -> OriginRecord? {
        switch try await fetch(key, stale: nil) {
        case .value(let value, _): OriginRecord(value: value, version: 0)
        case .notModified: throw HTTPOriginError(.notModifiedWithoutValue, "the origin answered 304 for '\(key)' without a cached value", status: 304)
        case .absent: nil
        }
    }

    public func load(_ key: String, context: FactoryContext<[UInt8]>) async throws -> [UInt8]? {
        switch try await fetch(key, stale: context.staleValue) {
        case .value(let value, let policy):
            policy.apply(to: &context.options)
            return value
        case .notModified(let policy):
            policy.apply(to: &context.options)
            return try context.notModified()
        case .absent:
            return nil
        }
    }

    /// What one GET said.
    enum Answer {
        case value([UInt8], CachePolicy)
        case notModified(CachePolicy)
        case absent
    }

    func fetch(_ key: String, stale: [UInt8]?) async throws(HTTPOriginError) -> Answer {
        let url = template.url(for: key)
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: "concord")
        let validator = stale.flatMap { stale in validators.withLock { $0.validator(for: key, matching: stale) } }
        if let validator {
            if let etag = validator.etag { request.headers.add(name: "If-None-Match", value: etag) }
            if let lastModified = validator.lastModified { request.headers.add(name: "If-Modified-Since", value: lastModified) }
        }
        let deadline = NIODeadline.now() + .nanoseconds(max(1, configuration.timeout.nanosecondsClamped))
        do {
            let response = try await http.execute(request, deadline: deadline, logger: logger)
            let policy = configuration.respectsCacheControl ? CachePolicy(cacheControl: response.headers[canonicalForm: "Cache-Control"].map(String.init)) : .unchanged
            switch response.status.code {
            case 200:
                let body: ByteBuffer
                do {
                    body = try await response.body.collect(upTo: configuration.maxValueBytes)
                } catch is NIOTooManyBytesError {
                    throw HTTPOriginError(.valueTooLarge, "the origin's value for '\(key)' is larger than \(configuration.maxValueBytes) bytes", status: 200)
                }
                let value = Array(body.readableBytesView)
                let etag = response.headers.first(name: "ETag")
                let lastModified = response.headers.first(name: "Last-Modified")
                validators.withLock { table in
                    if etag == nil && lastModified == nil {
                        table.remove(key)
                    } else {
                        table.insert(key, Validator(etag: etag, lastModified: lastModified, digest: Validator.digest(value)))
                    }
                }
                return .value(value, policy)
            case 304 where validator != nil:
                try await Self.discard(response.body)
                return .notModified(policy)
            case 404, 410:
                try await Self.discard(response.body)
                validators.withLock { $0.remove(key) }
                return .absent
            default:
                try await Self.discard(response.body)
                throw HTTPOriginError(.badStatus, "the origin answered \(response.status.code) for '\(key)'", status: Int(response.status.code))
            }
        } catch let error as HTTPOriginError {
            throw error
        } catch let error as HTTPClientError where [.deadlineExceeded, .readTimeout, .connectTimeout, .getConnectionFromPoolTimeout].contains(error) {
            throw HTTPOriginError(.timeout, "the origin did not answer for '\(key)' within \(configuration.timeout)")
        } catch {
            throw HTTPOriginError(.unreachable, "the origin at \(url) could not be reached: \(error)")
        }
    }

    /// Reads and drops a body nobody needs, so the connection can be reused; bounded, since an
    /// error page can be large.
    private static func discard(_ body: HTTPClientResponse.Body) async throws {
        for try await _ in body {}
    }
}

extension HTTPOrigin {
    /// The validators of the last 200 for a key, with a digest of the body they describe, so a
    /// revalidation is asked only for the value the cache actually holds (another node's PUT
    /// may have replaced it since).
    struct Validator: Equatable {
        var etag: String?
        var lastModified: String?
        var digest: Int

        static func digest(_ value: [UInt8]) -> Int {
            var hasher = Hasher()
            hasher.combine(value.count)
            value.withUnsafeBytes { hasher.combine(bytes: $0) }
            return hasher.finalize()
        }
    }

    /// Validators by key, at most `capacity`, dropped oldest first.
    struct ValidatorTable {
        let capacity: Int
        private var entries: [String: Validator] = [:]
        private var order: [String] = []
        private var orderStart = 0

        init(capacity: Int) {
            self.capacity = capacity
        }

        func validator(for key: String, matching value: [UInt8]) -> Validator? {
            guard let validator = entries[key], validator.digest == Validator.digest(value) else { return nil }
            return validator
        }

        mutating func insert(_ key: String, _ validator: Validator) {
            guard capacity > 0 else { return }
            if entries.updateValue(validator, forKey: key) == nil {
                order.append(key)
            }
            while entries.count > capacity, orderStart < order.count {
                entries[order[orderStart]] = nil
                orderStart += 1
            }
            // Compact the queue of insertion order once its dead head outgrows the live part.
            if orderStart > capacity {
                order = order[orderStart...].filter { entries[$0] != nil }
                orderStart = 0
            }
        }

        mutating func remove(_ key: String) {
            entries[key] = nil
        }

        var count: Int { entries.count }
    }

    /// What the upstream's `Cache-Control` asks of the entry.
    struct CachePolicy: Equatable {
        /// Keep the answer out of the cache.
        var noStore = false
        /// The entry's duration, from `s-maxage` (the node is a shared cache) or `max-age`.
        var maxAge: Duration?

        static let unchanged = CachePolicy()

        init(noStore: Bool = false, maxAge: Duration? = nil) {
            self.noStore = noStore
            self.maxAge = maxAge
        }

        init(cacheControl values: [String]) {
            var maxAge: Int64?
            var sharedMaxAge: Int64?
            for directive in values.joined(separator: ",").split(separator: ",") {
                let parts = directive.split(separator: "=", maxSplits: 1).map { $0.trimmingASCIIWhitespace().trimmingQuotes() }
                let name = parts.first?.lowercased() ?? ""
                let argument = parts.count > 1 ? Int64(parts[1]) : nil
                switch name {
                case "no-store", "no-cache", "private": noStore = true
                case "max-age": maxAge = argument.map { max(0, $0) }
                case "s-maxage": sharedMaxAge = argument.map { max(0, $0) }
                default: break
                }
            }
            if let seconds = sharedMaxAge ?? maxAge {
                if seconds == 0 { noStore = true } else { self.maxAge = .seconds(seconds) }
            }
        }

        func apply(to options: inout CacheEntryOptions) {
            if noStore {
                options.skipMemoryWrite = true
                options.skipDistributedWrite = true
                options.skipBackplaneNotifications = true
            } else if let maxAge {
                options.duration = maxAge
                if let memory = options.memoryDuration { options.memoryDuration = min(memory, maxAge) }
                if let distributed = options.distributedDuration { options.distributedDuration = min(distributed, maxAge) }
            }
        }
    }
}

extension String {
    /// Without the double quotes of a quoted-string directive argument.
    fileprivate func trimmingQuotes() -> String {
        var slice = Substring(self)
        while slice.first == "\"" { slice = slice.dropFirst() }
        while slice.last == "\"" { slice = slice.dropLast() }
        return String(slice)
    }
}
