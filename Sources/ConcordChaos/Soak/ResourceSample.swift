/// One reading of a process's resident memory and open file descriptors.
package struct ResourceSample: Sendable, Hashable, Codable {
    /// Since the harness started.
    package var time: Duration
    package var residentBytes: Int
    package var openFiles: Int

    package init(time: Duration, residentBytes: Int, openFiles: Int) {
        self.time = time
        self.residentBytes = residentBytes
        self.openFiles = openFiles
    }

    private enum CodingKeys: String, CodingKey { case timeMs, rssBytes, fds }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        time = try container.decodeMilliseconds(forKey: .timeMs)
        residentBytes = try container.decode(Int.self, forKey: .rssBytes)
        openFiles = try container.decode(Int.self, forKey: .fds)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeMilliseconds(time, forKey: .timeMs)
        try container.encode(residentBytes, forKey: .rssBytes)
        try container.encode(openFiles, forKey: .fds)
    }
}
