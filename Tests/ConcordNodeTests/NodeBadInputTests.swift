import Concord
import ConcordNode
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Bad requests: each gets the right status and the JSON error body, and none disturbs the node.
@Suite("Node bad input")
struct NodeBadInputTests {
    @Test("an empty key is a 400", arguments: ["/v1/cache/", "/v1/cache"])
    func emptyKey(path: String) async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            expectError(try await client.get(path), .badRequest, code: "invalidKey")
            expectError(try await client.put(path, "v"), .badRequest, code: "invalidKey")
            expectError(try await client.delete(path), .badRequest, code: "invalidKey")
        }
    }

    @Test("a key over --max-key-bytes is a 400, and no body is stored")
    func overlongKey() async throws {
        let node = try makeMemoryNode { $0.maxKeyBytes = 16 }
        try await node.makeApplication().test(.router) { client in
            let key = String(repeating: "k", count: 17)
            expectError(try await client.put("/v1/cache/\(key)", "v"), .badRequest, code: "keyTooLong")
            expectError(try await client.get("/v1/cache/\(key)"), .badRequest, code: "keyTooLong")
            expectError(try await client.post("/v1/invalidate", #"{"keys": ["ok", "\#(key)"]}"#), .badRequest, code: "keyTooLong")
            // Exactly at the limit is fine.
            #expect(try await client.put("/v1/cache/\(String(repeating: "k", count: 16))", "v").status == .ok)
            #expect(node.cache.statistics.memory.entries == 1)
        }
    }

    @Test("a malformed percent escape in the key is a 400", arguments: ["/v1/cache/%", "/v1/cache/a%2", "/v1/cache/%zz", "/v1/cache/%FF%FE"])
    func malformedKey(path: String) async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            expectError(try await client.get(path), .badRequest, code: "invalidKey")
        }
    }

    @Test("a value over --max-value-bytes is a 413 and is not stored")
    func oversizedValue() async throws {
        let node = try makeMemoryNode { $0.maxValueBytes = 1024 }
        try await node.makeApplication().test(.router) { client in
            let response = try await client.put("/v1/cache/big", String(repeating: "x", count: 1025))
            expectError(response, .contentTooLarge, code: "valueTooLarge")
            expectError(try await client.get("/v1/cache/big"), .notFound, code: "notFound")
            #expect(try await client.put("/v1/cache/fits", String(repeating: "x", count: 1024)).status == .ok)
        }
    }

    @Test("an unknown route is a 404", arguments: ["/", "/v2/cache/k", "/v1/cachex/k", "/v1/stats/extra", "/healthz"])
    func unknownRoute(path: String) async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            expectError(try await client.get(path), .notFound, code: "routeNotFound")
        }
    }

    @Test("a known route with the wrong method is a 405 with Allow", arguments: [
        ("/v1/cache/k", HTTPRequest.Method.post), ("/v1/cache/k", .patch), ("/v1/invalidate", .get),
        ("/v1/stats", .put), ("/health", .delete), ("/ready", .post), ("/metrics", .put), ("/v1/invalidate", .head),
    ])
    func wrongMethod(path: String, method: HTTPRequest.Method) async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            let response = try await client.execute(uri: path, method: method)
            if method == .head {
                #expect(response.status == .methodNotAllowed)
            } else {
                expectError(response, .methodNotAllowed, code: "methodNotAllowed")
            }
            #expect(response.headers[.allow]?.isEmpty == false)
        }
    }

    @Test("a malformed /v1/invalidate body is a 400 and expires nothing", arguments: [
        "", "not json", "{", #"{"keys": "k"}"#, #"{"keys": [1, 2]}"#, #"{"key": ["k"]}"#, "[]", #"{"keys": null}"#,
    ])
    func malformedInvalidate(body: String) async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            _ = try await client.put("/v1/cache/k", "v")
            expectError(try await client.post("/v1/invalidate", body), .badRequest, code: "malformedJSON")
            #expect(try await client.get("/v1/cache/k").text == "v")
        }
    }

    @Test("an invalid key anywhere in /v1/invalidate leaves every key untouched")
    func invalidateIsAllOrNothing() async throws {
        let node = try makeMemoryNode()
        try await node.makeApplication().test(.router) { client in
            #expect(try await client.poll("/ready", until: .ok).status == .ok)
            _ = try await client.put("/v1/cache/k", "v")
            expectError(try await client.post("/v1/invalidate", #"{"keys": ["k", ""]}"#), .badRequest, code: "invalidKey")
            let get = try await client.get("/v1/cache/k")
            #expect(get.text == "v")
            #expect(get.source == "memory")
        }
    }

    @Test("every error answer has the JSON error body")
    func everyErrorHasTheBody() async throws {
        let node = try makeMemoryNode { $0.maxValueBytes = 8; $0.maxKeyBytes = 8 }
        try await node.makeApplication().test(.router) { client in
            let responses: [TestResponse] = [
                try await client.get("/v1/cache/"),
                try await client.get("/v1/cache/123456789"),
                try await client.get("/v1/cache/%G0"),
                try await client.get("/v1/cache/absent"),
                try await client.put("/v1/cache/k", "123456789"),
                try await client.get("/nope"),
                try await client.execute(uri: "/v1/stats", method: .delete),
                try await client.post("/v1/invalidate", "{]"),
                try await client.put("/v1/cache/k?background=maybe", "v"),
            ]
            for response in responses {
                #expect(response.status.code >= 400)
                let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(buffer: response.body))
                #expect(envelope != nil, "status \(response.status.code) body: \(response.text)")
                #expect(envelope?.error.code.isEmpty == false)
                #expect(envelope?.error.message.isEmpty == false)
            }
            // The node still works.
            #expect(try await client.put("/v1/cache/k", "ok").status == .ok)
            #expect(try await client.get("/v1/cache/k").text == "ok")
        }
    }
}
