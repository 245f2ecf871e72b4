extension RedisConfiguration {
    /// The URL with its whole user info replaced, so no form of credential reaches a log, an
    /// error or a stats page: `redis://user:pw@h` → `redis://user:***@h`, `redis://pw@h` and
    /// `redis://:pw@h` → `redis://***@h`. Text that is not a URL is returned as `***` when it
    /// holds an `@`, since a secret could be anywhere in it.
    public static func redacted(url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else {
            return url.contains("@") ? "***" : url
        }
        // The last '@' before the path ends the user info, as the parser reads it.
        let afterScheme = url[schemeEnd.upperBound...]
        guard let at = afterScheme.lastIndex(of: "@") else { return url }
        let userInfo = afterScheme[..<at]
        let hiddenUserInfo: String
        if let colon = userInfo.firstIndex(of: ":"), colon != userInfo.startIndex {
            hiddenUserInfo = userInfo[..<colon] + ":***"
        } else {
            hiddenUserInfo = "***"
        }
        return url[..<schemeEnd.upperBound] + hiddenUserInfo + url[at...]
    }
}
