extension RedisServer {
    /// Sends PING and `INFO server` on a short-lived blocking socket; returns the server's pid once it answers PONG.
    public static func probe(port: Int, password: String?) -> Int32? {
        var request = ""
        if let password {
            request += command(["AUTH", password])
        }
        request += command(["INFO", "server"]) + command(["PING"])
        guard let reply = LoopbackProbe.exchange(port: port, request: Array(request.utf8), until: Array("+PONG\r\n".utf8)) else { return nil }
        return LoopbackProbe.field("process_id:", in: reply)
    }

    private static func command(_ arguments: [String]) -> String {
        "*\(arguments.count)\r\n" + arguments.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }
}
