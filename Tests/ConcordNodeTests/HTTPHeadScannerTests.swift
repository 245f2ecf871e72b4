@testable import ConcordNode
import Testing

/// The strict framing of request heads in front of the HTTP decoder (`HTTPHeadScanner`).
@Suite("HTTP head scanner")
struct HTTPHeadScannerTests {
    private func scan(_ text: String, max: Int = 16 * 1024) -> HTTPHeadScanner.Scan {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { HTTPHeadScanner.scan(UnsafeRawBufferPointer($0), maxHeadBytes: max) }
    }

    private func head(_ text: String) throws -> HTTPHeadScanner.Head {
        guard case .request(let head) = scan(text) else { throw TestError("not framed: \(text.debugDescription)") }
        return head
    }

    @Test("a plain GET is framed with its target and token, and the bytes after it are not part of it")
    func plainGet() throws {
        let request = "GET /v1/cache/k HTTP/1.1\r\nHost: x\r\nAuthorization:  Bearer t \r\nConnection: Keep-Alive\r\n\r\n"
        let framed = try head(request + "GET /next")
        #expect(framed.length == request.utf8.count)
        #expect(framed.isPlainGet && framed.keepsAlive && framed.bodyLength == 0)
        #expect(try !head("GET /k HTTP/1.0\r\n\r\n").keepsAlive)
        #expect(try !head("GET /k HTTP/1.1\r\nConnection: close\r\n\r\n").keepsAlive)
        #expect(try head("PUT /k HTTP/1.1\r\nContent-Length: 1\r\n\r\nx").keepsAlive)
        #expect(request.utf8.map { $0 }[framed.target].elementsEqual("/v1/cache/k".utf8))
        #expect(request.utf8.map { $0 }[try #require(framed.authorization)].elementsEqual("Bearer t".utf8))
        #expect(try head("GET /k HTTP/1.1\r\nContent-Length: 0\r\n\r\n").isPlainGet)
    }

    @Test("framed but not plain: other methods, HTTP/1.0, bodies, Expect, Connection other than keep-alive, two tokens")
    func framedNotPlain() throws {
        for request in [
            "HEAD /k HTTP/1.1\r\n\r\n", "GET /k HTTP/1.0\r\n\r\n", "GET http://x/k HTTP/1.1\r\n\r\n",
            "GET /k HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", "GET /k HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /k HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
        ] {
            #expect(try !head(request).isPlainGet, "\(request.debugDescription)")
        }
        let put = try head("PUT /k HTTP/1.1\r\ncontent-length: 12\r\n\r\nbody")
        #expect(!put.isPlainGet && put.bodyLength == 12)
    }

    @Test("anything not framed strictly is unframeable: the decoder reads it")
    func unframeable() {
        for request in [
            "POST /k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "GET /k HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "GET /k HTTP/1.1\r\nContent-Length: +1\r\n\r\n", "GET /k HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
            "GET /k HTTP/1.1\nHost: x\n\n", "GET /k HTTP/1.1\r\nHost : x\r\n\r\n", "GET /k HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            "GET /k HTTP/2.0\r\n\r\n", "GET  /k HTTP/1.1\r\n\r\n", "\r\nGET /k HTTP/1.1\r\n\r\n", "GET /k HTTP/1.1\r\nX: a\0b\r\n\r\n",
            "CONNECT x:1 HTTP/1.1\r\n\r\n", "GET /k HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "GET /k HTTP/1.1\r\nX: a\rb\r\n\r\n",
        ] {
            #expect(scan(request) == .unframeable, "\(request.debugDescription)")
        }
    }

    @Test("a head cut anywhere is incomplete until its end, then framed; past the bound it is unframeable")
    func cuts() {
        let request = "GET /v1/cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        for count in 0..<request.utf8.count {
            #expect(scan(String(request.utf8.prefix(count))!) == .incomplete, "cut at \(count)")
        }
        #expect(scan(request, max: request.utf8.count - 1) == .unframeable)
        #expect(scan("GET /v1/cache/k HTTP/1.1\r\nHost: x", max: 20) == .unframeable)
        guard case .request = scan(request, max: request.utf8.count) else {
            Issue.record("not framed at the bound")
            return
        }
    }
}
