/// Why a suite could not run at all (as opposed to a target being missed, which is a result).
struct BenchError: Error, CustomStringConvertible {
    let message: String

    init(_ message: String) {
        self.message = message
    }

    var description: String { "bench: \(message)" }
}
