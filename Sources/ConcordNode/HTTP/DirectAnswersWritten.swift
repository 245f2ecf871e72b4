/// Fired down the pipeline after requests were answered in front of the HTTP decoder, which the
/// handlers behind it never see: `RequestDeadlineHandler` starts the next request's deadline as
/// after any answer.
struct DirectAnswersWritten: Sendable {}
