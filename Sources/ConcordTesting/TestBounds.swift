/// How long tests wait for what normally takes milliseconds before they call it lost. CI is a
/// loaded 2-core machine (load average 15 and more, several test processes and builds at once),
/// where a connection or a state change can take seconds; a passing test never waits these
/// out, so being generous costs nothing but the time a real failure takes to report.
public enum TestBounds {
    /// A condition polled with `eventually` (a value propagated, a state reached).
    public static let condition: Duration = .seconds(30)
    /// A client's first connection to a server the test just started, or its reconnection after one.
    public static let connect: Duration = .seconds(60)
    /// A reply from a server on loopback, where the test is not about timeouts (a client's
    /// connect and command timeouts in tests).
    public static let reply: Duration = .seconds(10)
}
