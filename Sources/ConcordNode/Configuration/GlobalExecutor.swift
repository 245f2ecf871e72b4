import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which threads run a `concord` process's Swift tasks (`--executor`, `CONCORD_EXECUTOR`).
///
/// With `nio`, SwiftNIO's singleton event loop group becomes Swift's global executor
/// (`EventLoopGlobalExecutor`):
/// a task that sends a Redis command, and the task that a RESP or HTTP connection hands its
/// work to, then run on the same event loop threads as the connections, so a command's reply
/// resumes its caller without waking a thread of another pool. With `default`, Swift's own
/// cooperative pool runs the tasks and every L2 command costs two cross-thread wake-ups.
///
/// The choice is process-wide and can only be made before the first task starts, so
/// `concord`'s synchronous entry point reads it from the command line and the environment
/// (`requested(arguments:environment:fallback:)`) and calls `install()` first thing.
/// Nothing in the node may block a thread under `nio`: a blocked task would stall every
/// connection of its loop.
public enum GlobalExecutor: String, Sendable, CaseIterable, CustomStringConvertible {
    /// SwiftNIO's event loops run Swift tasks.
    case nio
    /// Swift's default global executor (its cooperative thread pool).
    case standard = "default"

    /// What `concord node` uses when neither the flag nor the variable says (measured: see the
    /// README's configuration reference).
    public static let nodeDefault: GlobalExecutor = .nio
    /// What `concord bench` uses when neither the flag nor the variable says. Its process hosts
    /// up to 65 caches at once (the propagation suite's stand-ins for separate nodes): on the
    /// two event loops their work delays their own I/O, and back-to-back propagation at 4–64
    /// receivers measured 6–86× slower than on Swift's pool. `CONCORD_EXECUTOR=nio` measures
    /// the `l2` suite as a node runs it.
    public static let benchDefault: GlobalExecutor = .standard

    /// The flag's name without dashes, as `NodeOption` spells names.
    public static let optionName = "executor"
    /// The variable read when the flag is absent.
    public static var environmentVariable: String { NodeOption.environmentVariable(for: optionName) }

    /// The accepted words, for messages.
    public static let choices = "nio or default"

    /// `nio` or `default`, in any case; nil for anything else.
    public init?(parsing text: String) {
        self.init(rawValue: text.trimmingASCIIWhitespace().lowercased())
    }

    public var description: String { rawValue }

    /// The executor a command line asks for: the last `--executor X` or `--executor=X` before a
    /// `--` wins over a non-empty `CONCORD_EXECUTOR`, which wins over `fallback`. Nil when the
    /// value given is not a choice: then nothing is installed and the command's own parser
    /// rejects the value with its usual message.
    public static func requested(
        arguments: some Sequence<String>,
        environment: [String: String],
        fallback: GlobalExecutor
    ) -> GlobalExecutor? {
        let flag = "--" + optionName
        var typed: String?
        var takesNext = false
        for argument in arguments {
            if takesNext {
                typed = argument
                takesNext = false
            } else if argument == "--" {
                break
            } else if argument == flag {
                takesNext = true
                typed = ""
            } else if argument.hasPrefix(flag + "=") {
                typed = String(argument.dropFirst(flag.count + 1))
            }
        }
        if let typed { return GlobalExecutor(parsing: typed) }
        if let variable = environment[environmentVariable], !variable.trimmingASCIIWhitespace().isEmpty {
            return GlobalExecutor(parsing: variable)
        }
        return fallback
    }

    private static let installed = Atomic<Bool>(false)

    /// The executor this process runs its tasks on: `nio` once `install()` succeeded.
    public static var current: GlobalExecutor { installed.load(ordering: .acquiring) ? .nio : .standard }

    /// Makes this choice take effect and returns what is in effect. For `nio` it must be called
    /// once, from the main thread, before any task has started; it falls back to `default`
    /// (and says so through the result) where SwiftNIO cannot install its hook.
    @discardableResult
    public func install() -> GlobalExecutor {
        guard self == .nio else { return Self.current }
        guard !Self.installed.load(ordering: .acquiring) else { return .nio }
        if EventLoopGlobalExecutor.install() {
            Self.installed.store(true, ordering: .releasing)
            return .nio
        }
        return .standard
    }

    /// One line for the log at startup.
    public func startupMessage(requested: GlobalExecutor) -> String {
        switch (requested, self) {
        case (.nio, .nio):
            "executor nio: Swift tasks run on SwiftNIO's \(NIOSingletons.groupLoopCountSuggestion) event loops, the connections' threads (\(Self.environmentVariable)=default for Swift's pool)"
        case (.nio, .standard):
            "executor default: SwiftNIO could not be installed as Swift's global executor on this platform; Swift tasks run on Swift's pool"
        case (.standard, _):
            "executor default: Swift tasks run on Swift's cooperative pool, L2 replies hop to it (\(Self.environmentVariable)=nio to run them on the event loops)"
        }
    }
}
