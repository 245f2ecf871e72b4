import Logging

/// Loggers for the suites: quiet (`.error`) so that log output never competes with a measurement.
package enum BenchLogging {
    package static func quietLogger(label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = .error
        return logger
    }
}
