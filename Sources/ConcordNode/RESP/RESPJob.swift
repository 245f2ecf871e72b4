/// A command's awaited part, run in the RESP server's task group.
struct RESPJob: Sendable {
    let run: @Sendable () async -> Void
}
