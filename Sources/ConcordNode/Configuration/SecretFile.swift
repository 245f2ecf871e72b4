import Foundation

/// Reads the files that hold secrets (bearer tokens, the Redis password), so the secrets
/// themselves never appear in argv, the environment or an error message.
enum SecretFile {
    /// The non-empty lines of the file, trimmed; lines starting with `#` are comments. Throws
    /// for a file that cannot be read or holds no secret, naming the option, never the content.
    static func lines(of path: String, option: NodeOption) throws(NodeConfigurationError) -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw failure(option, path, "cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw failure(option, path, "is not UTF-8 text")
        }
        let lines = text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingASCIIWhitespace() }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty else { throw failure(option, path, "holds no secret (one per line; # starts a comment)") }
        return lines
    }

    /// The first secret line of the file (a password).
    static func firstLine(of path: String, option: NodeOption) throws(NodeConfigurationError) -> String {
        try lines(of: path, option: option)[0]
    }

    private static func failure(_ option: NodeOption, _ path: String, _ reason: String) -> NodeConfigurationError {
        NodeConfigurationError(.unreadableFile, option: option.name, source: .combination, value: nil, message: "the file '\(path)' \(reason)")
    }
}
