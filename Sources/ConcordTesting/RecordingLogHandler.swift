import Logging
import Synchronization

/// A log handler that keeps every record, so a test can check what a component logged (and
/// that it logged no warning where it should not).
public struct RecordingLogHandler: LogHandler {
    /// One logged line.
    public struct Record: Sendable, CustomStringConvertible {
        public var level: Logger.Level
        public var message: String
        public var label: String
        public var metadata: Logger.Metadata

        public var description: String { "[\(level)] \(label): \(message) \(metadata)" }
    }

    /// The records of every handler made by one `Recorder`.
    public final class Recorder: Sendable {
        private let records = Mutex<[Record]>([])

        public init() {}

        /// A logger at `level` whose records this recorder keeps.
        public func logger(label: String = "concord.test", level: Logger.Level = .trace) -> Logger {
            var logger = Logger(label: label) { label in RecordingLogHandler(label: label, recorder: self) }
            logger.logLevel = level
            return logger
        }

        /// Everything recorded so far.
        public var all: [Record] { records.withLock { $0 } }

        /// Records at `level` or above.
        public func records(atLeast level: Logger.Level) -> [Record] { all.filter { $0.level >= level } }

        fileprivate func append(_ record: Record) { records.withLock { $0.append(record) } }
    }

    private let label: String
    private let recorder: Recorder
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public init(label: String, recorder: Recorder) {
        self.label = label
        self.recorder = recorder
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        recorder.append(Record(level: event.level, message: "\(event.message)", label: label, metadata: merged))
    }
}
