import Hummingbird
import HummingbirdAuth

/// Attaches the scopes of the request's `Authorization: Bearer` token (parsed by
/// HummingbirdAuth) to its context; the routes then check the scope they need. A request
/// without a known token goes on with no identity and is refused by any protected route.
struct BearerTokenAuthenticator<Context: AuthRequestContext<APIScope>>: AuthenticatorMiddleware {
    typealias Identity = APIScope
    let tokens: AccessTokens

    func authenticate(request: Request, context: Context) async throws -> APIScope? {
        guard let bearer = request.headers.bearer else { return nil }
        let scopes = tokens.scopes(of: bearer.token)
        return scopes.isEmpty ? nil : scopes
    }
}
