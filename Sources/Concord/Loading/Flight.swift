import Synchronization

/// One in-flight load of a key: callers share its result, and invalidations that arrive while
/// it runs fence off what it would install.
final class Flight: Sendable {
    /// The result every caller of the flight receives.
    struct Outcome: Sendable {
        var value: any Sendable
        var source: CacheValueSource
        var isStale: Bool
        var version: CacheVersion
    }

    let promise = Promise<Outcome>()
    private let fence = Mutex<CacheVersion?>(nil)

    init() {}

    /// Records an invalidation seen while the flight runs.
    func invalidate(upTo version: CacheVersion) {
        fence.withLock { current in
            if current == nil || current! < version { current = version }
        }
    }

    /// Whether a value of `version` may be installed: newer than every invalidation seen
    /// while the flight ran.
    func allowsInstall(of version: CacheVersion) -> Bool {
        fence.withLock { current in
            guard let current else { return true }
            return version > current
        }
    }
}
