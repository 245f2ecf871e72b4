/// Why a one-in-flight latency run stopped: the server's answer or the connection, never a timing.
enum OneInFlightClientError: Error, Equatable, CustomStringConvertible {
    /// The socket could not be made or connected.
    case connectFailed(String)
    /// The server closed the connection before a whole response.
    case closed
    /// No byte could be written or read within the socket timeout.
    case timedOut
    /// A read or write failed with this `errno` text.
    case io(String)
    /// Bytes that are not a response of the expected kind.
    case badReply(String)
    /// An HTTP status other than the one expected.
    case unexpectedStatus(Int)
    /// A RESP error reply.
    case serverError(String)

    var description: String {
        switch self {
        case .connectFailed(let reason): "cannot connect: \(reason)"
        case .closed: "the server closed the connection before a whole response"
        case .timedOut: "no progress within the socket timeout"
        case .io(let reason): "socket error: \(reason)"
        case .badReply(let reason): "bad reply: \(reason)"
        case .unexpectedStatus(let status): "unexpected HTTP status \(status)"
        case .serverError(let message): "server error reply: \(message)"
        }
    }
}
