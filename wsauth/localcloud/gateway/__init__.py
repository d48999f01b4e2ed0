"""The gateway emulator: API Gateway WebSocket APIs (stage, routes, authorizer, @connections).

Layers: `http` (HTTP/1.1 heads and responses), `routing` (route selection), `events` (AWS event
shapes and the authorizer's answer), `management` (the `@connections` API) with `sigv4` (its
signature check), `server` (the asyncio server and the connection lifecycle).

How it answers, and where AWS's behaviour is not documented, what was chosen:

- Handshake: only `GET /{stage}` upgrades (other paths 404, no `Upgrade` 426). With a connect
  authorizer, a missing or empty identity source is 401 before the authorizer runs; Deny, or an
  Allow that does not cover `methodArn`, is 403; an authorizer that fails, times out or answers
  a malformed result (no `principalId`, no policy, nested `context` values) is 500, as API
  Gateway's AuthorizerConfigurationException. `$connect` answering non-2xx refuses the
  handshake with that status (and its `body`); a failing `$connect` is 500. A
  `Sec-WebSocket-Protocol` header in `$connect`'s result is answered in the 101.
- Events carry `requestContext.authorizer` = the authorizer's `context` keys plus `principalId`
  and `integrationLatency` (values kept as the authorizer typed them) on `$connect` and every
  later event. Ids are 16-character URL-safe base64 like AWS's (`JC1dgf9yoAMCK-g=`). Account id
  `000000000000`.
- Messages: route selection evaluates `$request.body.<path>` on text messages; binary messages
  go to `$default` with a base64 body and `isBase64Encoded` true. No match and no `$default`
  answers `{"message": "Forbidden", "connectionId", "requestId"}`. Each message is its own
  invocation, concurrent with the others of the same client, as on AWS. A function error or
  the integration timeout answers `{"message": "Internal server error", ...}` and the socket
  stays open. A route's result is dropped: API Gateway returns it only for two-way routes
  (route responses), which this project's program does not declare.
- `$disconnect` runs once per accepted connection, after the socket closes: the client's close
  code and reason (1005 "Client-side close frame status not set" for an empty close frame),
  1006 for a TCP drop, 1000 "Connection Closed Normally" after `DELETE @connections`,
  1001 "Going away" for the idle timeout, the 2-hour maximum and `Gateway.close()`, 1009 for
  oversize frames (32 KB) or messages (128 KB). Its result is ignored.
- Idle: only data messages count as activity, the client's and those posted to it; pings do not.
- `@connections`: every call must be SigV4-signed for service `execute-api` in the API's
  region, with an `X-Amz-Date` within 5 minutes and `host` among the signed headers; otherwise
  403 with AWS's error type ("Missing Authentication Token", IncompleteSignatureException,
  InvalidSignatureException). The signature itself is recomputed for the access keys the
  gateway is given (the local cloud's own, which its workers sign with); other keys are taken
  on trust, as moto takes them, since there is no IAM locally to know their secrets. POST
  sends the body as one text message when it is UTF-8, else as a binary message; a declared
  body over 128 KB is 413 PayloadTooLargeException before it is read; a call on another stage
  is 403 MissingAuthenticationTokenException; every request must arrive whole within the
  request timeout (30 s), else 408 and close; a client whose unread data passes 1 MB makes
  POST answer 429 LimitExceededException. Unknown ids are 410 GoneException (as are
  connections already closing). GET answers `connectedAt`, `identity`, `lastActiveAt`.
- Backpressure: a peer that does not read what it is sent, or has 64 messages in flight, is not
  read from until it catches up, so memory per connection stays bounded.
"""

from __future__ import annotations

from .server import Gateway

__all__ = ["Gateway"]
