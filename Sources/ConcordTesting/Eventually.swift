/// Waits until `condition` holds, for at most `timeout` of real time, and says whether it did:
/// the one way tests wait for something to happen (never a fixed sleep). It checks again every
/// `interval`; `.zero` only yields between checks, for tests whose progress comes from other
/// tasks on a manual clock rather than from time passing. The condition is checked once more
/// at the deadline, so a slow machine that makes it just in time still passes.
public func eventually(
    timeout: Duration = TestBounds.condition,
    pollingEvery interval: Duration = .milliseconds(10),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        if interval > .zero {
            try? await Task.sleep(for: interval)
        } else {
            await Task.yield()
        }
    }
    return try await condition()
}
