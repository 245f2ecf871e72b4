/// A node id shared by the L1 entries whose versions that node made.
final class NodeName: Sendable {
    let text: String

    init(_ text: String) {
        self.text = text
    }
}
