/// Why a node setting was rejected: which option, where its value came from, and what was wrong.
public struct NodeConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was wrong with the value, as an extensible set of codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidDuration
            case invalidSize
            case invalidInteger
            case invalidBoolean
            case invalidChoice
            case invalidURL
            case invalidOrigin
            case outOfRange
            case unknownOption
            case invalidKeyFile
            case unreadableFile
            case unauthenticatedBind
        }

        fileprivate let base: Base

        /// Not a duration such as `250ms`, `30s`, `5m` or `1h`.
        public static var invalidDuration: Self { .init(base: .invalidDuration) }
        /// Not a size such as `1024`, `64KiB` or `8MiB`.
        public static var invalidSize: Self { .init(base: .invalidSize) }
        /// Not a whole number.
        public static var invalidInteger: Self { .init(base: .invalidInteger) }
        /// Not one of true/false, yes/no, on/off, 1/0.
        public static var invalidBoolean: Self { .init(base: .invalidBoolean) }
        /// Not one of the accepted words (a log level, for instance).
        public static var invalidChoice: Self { .init(base: .invalidChoice) }
        /// Not a usable Redis, Memcached or OTLP collector URL.
        public static var invalidURL: Self { .init(base: .invalidURL) }
        /// Not an origin such as `sqlite:/var/lib/concord/items.db`.
        public static var invalidOrigin: Self { .init(base: .invalidOrigin) }
        /// Well formed but outside the accepted range, alone or together with another setting.
        public static var outOfRange: Self { .init(base: .outOfRange) }
        /// A flag name that no node option has (a programming error in the caller).
        public static var unknownOption: Self { .init(base: .unknownOption) }
        /// The backplane key file cannot be read or does not hold one or two keys of 16+ bytes.
        public static var invalidKeyFile: Self { .init(base: .invalidKeyFile) }
        /// A token, password, certificate or key file that cannot be read, or holds nothing.
        public static var unreadableFile: Self { .init(base: .unreadableFile) }
        /// A bind beyond loopback with no token file and no `--allow-unauthenticated`.
        public static var unauthenticatedBind: Self { .init(base: .unauthenticatedBind) }

        public var description: String { base.rawValue }
    }

    /// Where a rejected value came from.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case flag
        case environment
        /// The combination of settings, not one value.
        case combination

        public var description: String {
            switch self {
            case .flag: "flag"
            case .environment: "environment"
            case .combination: "combination"
            }
        }
    }

    public let code: Code
    /// The option's long flag name without dashes, e.g. `duration`.
    public let option: String
    public let source: Source
    /// The rejected text, when there was one.
    public let value: String?
    public let message: String

    public init(_ code: Code, option: String, source: Source, value: String?, message: String) {
        self.code = code
        self.option = option
        self.source = source
        self.value = value
        self.message = message
    }

    /// Names the option the way the user wrote it: `--duration` or `CONCORD_DURATION`.
    public var description: String {
        let subject: String
        switch source {
        case .flag: subject = "--\(option)"
        case .environment: subject = NodeOption.environmentVariable(for: option)
        case .combination: subject = "--\(option)"
        }
        if let value {
            return "\(subject): '\(value)' \(message)"
        }
        return "\(subject): \(message)"
    }
}
