import Concord

extension CacheVersion {
    /// Parses the `Concord-Version` header form, `description`'s `ms.counter@node`, so a client
    /// can tell whether a node serves a given write or a newer one. Nil for anything else.
    public init?(headerValue text: String) {
        guard let dot = text.firstIndex(of: "."), let at = text.firstIndex(of: "@"), dot < at,
              let milliseconds = Int64(text[..<dot]),
              let counter = UInt32(text[text.index(after: dot)..<at])
        else { return nil }
        let node = String(text[text.index(after: at)...])
        guard CacheVersion.isValidNode(node) else { return nil }
        self.init(milliseconds: milliseconds, counter: counter, node: node)
    }
}
