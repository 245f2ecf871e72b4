import Concord
/// What one command does with each answer in a Redis Cluster: a plain value, fed replies and
/// failures, that says where to send next. It counts every redirection and retry, so a
/// redirect loop or a cluster that stays down ends in a typed error after `maxRedirects`.
struct ClusterRequestStateMachine {
    enum Action {
        /// The reply is final (a value, or an error reply that is not about the cluster).
        case complete(RESPValue)
        /// Send again to `to`, which now owns the slot; the map learns it and a refresh is due.
        case moved(slot: Int, to: RedisConfiguration.Cluster.Endpoint)
        /// Send once to `to` with `ASKING` first; the map does not change.
        case ask(to: RedisConfiguration.Cluster.Endpoint)
        /// Wait `delay`, then send again to the slot's owner (TRYAGAIN, CLUSTERDOWN, or no connection to it).
        case retry(after: Duration, refreshTopology: Bool)
        case fail(RedisError)
    }

    let maxRedirects: Int
    let backoff: RetryBackoff
    private(set) var redirects = 0
    private var retries = 0

    init(maxRedirects: Int, backoff: RetryBackoff) {
        self.maxRedirects = max(0, maxRedirects)
        self.backoff = backoff
    }

    /// The next step after `reply` from the node at host `answeredBy`.
    mutating func receive<Random: RandomNumberGenerator>(_ reply: RESPValue, answeredBy: String, random: inout Random) -> Action {
        guard case .error(let message) = reply else { return .complete(reply) }
        let redirection: ClusterRedirection?
        do {
            redirection = try ClusterRedirection(errorMessage: message, answeredBy: answeredBy)
        } catch {
            return .fail(error)
        }
        guard let redirection else { return .complete(reply) }
        guard redirects < maxRedirects else {
            return .fail(RedisError(
                .clusterRedirectLimit,
                "gave up after \(maxRedirects) cluster redirections; the last answer was \(message.prefix(200))"))
        }
        redirects += 1
        switch redirection {
        case .moved(let slot, let endpoint):
            return .moved(slot: slot, to: endpoint)
        case .ask(_, let endpoint):
            return .ask(to: endpoint)
        case .tryAgain, .clusterDown:
            defer { retries += 1 }
            return .retry(after: backoff.delay(attempt: retries, using: &random), refreshTopology: redirection == .clusterDown)
        }
    }

    /// The next step after the command could not be sent (no connection to the owner): the
    /// owner may have failed over, so wait, refresh and try again, within the same cap. An
    /// error after the command was sent (a timeout, a closed connection) is final: it may have run.
    mutating func couldNotSend<Random: RandomNumberGenerator>(_ error: RedisError, random: inout Random) -> Action {
        guard error.code == .notConnected || error.code == .connectionRefused, redirects < maxRedirects else {
            return .fail(error)
        }
        redirects += 1
        defer { retries += 1 }
        return .retry(after: backoff.delay(attempt: retries, using: &random), refreshTopology: true)
    }
}
