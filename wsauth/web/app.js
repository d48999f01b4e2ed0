// The demo page: sign up / confirm / sign in against Cognito's JSON API, then one WebSocket to
// the API with the ID token in the query string (the authorizer's default token source).
// The connection lives only as long as the token it presented: before that token expires, the
// page gets fresh ones from Cognito and hands the new ID token to the server on the same socket
// ({"action": "refreshToken"}); the server answers with control messages ({"type": …}).
// "Sign out everywhere" asks the server ({"action": "signOutEverywhere"}) to end every session of
// the user: each of their connections, on this page or any other, gets {"type": "signedOut"}.
// Plain JavaScript, no build step, nothing fetched from elsewhere: the server sends three files
// and /config.json (the stack's endpoints).
"use strict";

const RECONNECT_BASE_MS = 1000;
const RECONNECT_CAP_MS = 30000;
// Refresh this long before the ID token expires (or a quarter of its lifetime, if shorter), so the
// connection is extended, and a reconnect presents a valid token, in good time.
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
const REFRESH_RETRY_MS = 15000;
const COGNITO_TIMEOUT_MS = 15000;
// API Gateway refuses WebSocket frames over 32 KB; say so before sending rather than after.
const MAX_MESSAGE_BYTES = 32 * 1024;
const MAX_SHOWN_MESSAGES = 200;

// The server's reasons for refusing a refreshed token (the authorizer's codes, plus the
// refresh's own) in words; any other code reads as the generic sentence. ("session_revoked", a
// sign-out everywhere, ends the session instead: see handleControl.)
const REJECTION_REASONS = {
  expired: "the new token had already expired",
  not_yet_valid: "the new token is not valid yet (check this computer's clock)",
  bad_signature: "the new token's signature is not valid",
  kid_unknown: "the new token's signing key is unknown to the server",
  other_user: "the new token belongs to another user",
  token_use_mismatch: "the new token is of the wrong kind (ID or access token)",
  client_mismatch: "the new token is for another app client",
  iss_mismatch: "the new token is from another user pool",
  token_missing: "the request carried no token",
  jwks_unavailable: "the server could not check the token just now",
  connection_unknown: "the server no longer knows this connection",
};
const SESSION_EXPIRED = "Your session has expired: sign in again.";
// A handshake refused, then the refresh token too: expired or revoked, the page cannot tell.
const SESSION_ENDED = "Your session has ended: sign in again.";
const SIGNED_OUT_HERE = "You signed out everywhere.";
const SIGNED_OUT_ELSEWHERE = "You were signed out everywhere.";
// The server answers a sign-out everywhere within seconds (one Cognito call, one message per
// connection); past this, say it did not answer rather than leave the button waiting.
const SIGN_OUT_EVERYWHERE_TIMEOUT_MS = 15000;

// What a person should read for each Cognito error type.
const COGNITO_MESSAGES = {
  NotAuthorizedException: "Wrong email or password.",
  // Cognito says "not found" only when user-existence errors are on; read it the same way.
  UserNotFoundException: "Wrong email or password.",
  UserNotConfirmedException:
    "This account is not confirmed yet: enter the confirmation code sent to your email.",
  UsernameExistsException: "An account with this email already exists: sign in instead.",
  CodeMismatchException: "Wrong confirmation code: check the email and try again.",
  ExpiredCodeException: "This confirmation code has expired: send a new code.",
  TooManyRequestsException: "Too many attempts: wait a minute, then try again.",
  LimitExceededException: "Too many attempts: wait a minute, then try again.",
  TooManyFailedAttemptsException: "Too many attempts: wait a minute, then try again.",
};

class CognitoError extends Error {
  constructor(type, message) {
    super(message);
    this.type = type;
  }
}

const $ = (id) => document.getElementById(id);
const ui = {
  error: $("error"),
  notice: $("notice"),
  authView: $("auth-view"),
  authForm: $("auth-form"),
  email: $("email"),
  password: $("password"),
  confirmView: $("confirm-view"),
  confirmForm: $("confirm-form"),
  confirmHint: $("confirm-hint"),
  code: $("code"),
  resendCode: $("resend-code"),
  confirmBack: $("confirm-back"),
  sessionView: $("session-view"),
  who: $("who"),
  status: $("status"),
  expiryLine: $("expiry-line"),
  expiry: $("expiry"),
  signOut: $("sign-out"),
  signOutEverywhere: $("sign-out-everywhere"),
  messageForm: $("message-form"),
  message: $("message"),
  send: $("send"),
  messages: $("messages"),
  noMessages: $("no-messages"),
};

let config = null;

// Tokens live only in this variable, never in localStorage, sessionStorage or cookies: Web
// Storage is readable by any script that ever runs on this origin (one XSS is enough to carry
// them off) and outlives the tab. In memory they die with the tab; a reload means signing in
// again, which is the right trade for a page that holds keys to someone's connection.
let session = null; // {email, idToken, accessToken, refreshToken, issuedAt, expiresAt}
let refreshing = null; // the refresh in flight, shared by whoever needs fresh tokens
let refreshTimer = null;
let pendingConfirmation = null; // email of a sign-up waiting for its code
// This page asked to sign out everywhere (so the signedOut that follows is its own doing), and
// the timer of the request still waiting for the server's answer.
let signOutEverywhereAsked = false;
let signOutEverywhereTimer = null;

const connection = {
  socket: null, // the one socket; connect() refuses to open a second
  presented: null, // the token the socket opened with or last offered in-band
  attempt: 0,
  reconnectTimer: null,
  countdownTimer: null,
  reconnectAt: 0,
  // Where the stack's authorizer reads the token (config tokenSource): the query string (the
  // default) or the Sec-WebSocket-Protocol header. The outputs don't say, and a browser never
  // sees the 401 that would tell, so until a connection opens a failed handshake switches to
  // the other place; the first one that opens is kept.
  tokenSource: null,
  trying: "query",
  refused: false, // the last handshake failed (the socket closed before it opened)
  sessionChecked: false, // the refresh token was tried since the last open (see reconnect)
};

// ---------------------------------------------------------------------------------------------
// Messages to the person

// `kind` lets a later event clear only its own error ("socket": cleared once connected).
function showError(text, kind = "") {
  ui.error.textContent = text;
  ui.error.dataset.kind = kind;
  ui.error.hidden = false;
  ui.notice.hidden = true;
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  ui.error.hidden = true;
}

function clearBanners() {
  ui.error.hidden = true;
  ui.notice.hidden = true;
}

function describe(error) {
  if (error instanceof CognitoError) {
    // Otherwise Cognito's own wording, which is readable (e.g. the password rule that failed).
    return COGNITO_MESSAGES[error.type] || error.message;
  }
  return "Something went wrong: " + (error && error.message ? error.message : String(error));
}

function showView(name) {
  ui.authView.hidden = name !== "auth";
  ui.confirmView.hidden = name !== "confirm";
  ui.sessionView.hidden = name !== "session";
}

// Disable a form's buttons while its request is in flight, so a double click sends one request.
async function whileBusy(form, work) {
  const buttons = form.querySelectorAll("button");
  form.setAttribute("aria-busy", "true");
  buttons.forEach((button) => (button.disabled = true));
  try {
    await work();
  } finally {
    form.removeAttribute("aria-busy");
    buttons.forEach((button) => (button.disabled = false));
  }
}

// ---------------------------------------------------------------------------------------------
// Cognito's JSON API (the same calls the AWS SDKs make; these need no AWS credentials)

async function cognito(action, body) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), COGNITO_TIMEOUT_MS);
  let response;
  let text;
  try {
    response = await fetch(config.cognitoEndpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSCognitoIdentityProviderService." + action,
      },
      body: JSON.stringify(body),
      signal: abort.signal,
      cache: "no-store",
    });
    text = await response.text();
  } catch {
    throw new CognitoError("NetworkError", "Server unreachable: check your connection and try again.");
  } finally {
    clearTimeout(timer);
  }
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = {};
  }
  if (!response.ok) {
    // "__type" may carry a namespace ("…#NotAuthorizedException"); the header is the fallback.
    const raw = data.__type || response.headers.get("x-amzn-errortype") || "UnknownError";
    const type = raw.split("#").pop().split(":")[0];
    const message = data.message || data.Message || `Cognito answered ${response.status}.`;
    throw new CognitoError(type, message);
  }
  return data;
}

// The payload of a JWT, read only for its times and names: the API's authorizer is what checks
// the signature, never this page.
function claimsOf(jwt) {
  const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const padded = payload + "=".repeat((4 - (payload.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function tokensFrom(result, previous) {
  const idToken = result.IdToken;
  const claims = claimsOf(idToken);
  const now = Date.now();
  // Schedule from the token's own lifetime (exp - iat) counted on this machine's clock, so a
  // computer whose clock is off by minutes still refreshes in time.
  const lifetimeMs = Math.max(0, (claims.exp - (claims.iat || claims.exp)) * 1000);
  return {
    email: previous ? previous.email : claims.email,
    idToken,
    accessToken: result.AccessToken,
    // A refresh answer carries a new refresh token only when rotation is on.
    refreshToken: result.RefreshToken || (previous && previous.refreshToken),
    issuedAt: now,
    expiresAt: now + lifetimeMs,
  };
}

// ---------------------------------------------------------------------------------------------
// Sign up, confirm, sign in, refresh, sign out

async function signUp(email, password) {
  const result = await cognito("SignUp", {
    ClientId: config.userPoolWebClientId,
    Username: email,
    Password: password,
    UserAttributes: [{ Name: "email", Value: email }],
  });
  // Not kept through the code step: the person types it again to sign in.
  ui.password.value = "";
  if (result.UserConfirmed) {
    showNotice("Account created: sign in.");
    return;
  }
  const destination = result.CodeDeliveryDetails && result.CodeDeliveryDetails.Destination;
  askForCode(email, destination ? `We sent a code to ${destination}.` : "We sent you a code.");
}

function askForCode(email, hint) {
  pendingConfirmation = email;
  ui.confirmHint.textContent = config.local
    ? `The local cloud sends no email and accepts any code: type any code to confirm ${email}.`
    : `${hint} Enter it to confirm ${email}.`;
  // The embedded Cognito has no ResendConfirmationCode (it answers with a bare 500).
  ui.resendCode.hidden = config.local;
  ui.code.value = "";
  showView("confirm");
  ui.code.focus();
}

async function confirmSignUp(code) {
  await cognito("ConfirmSignUp", {
    ClientId: config.userPoolWebClientId,
    Username: pendingConfirmation,
    ConfirmationCode: code,
  });
  ui.email.value = pendingConfirmation;
  pendingConfirmation = null;
  showView("auth");
  showNotice("Email confirmed: sign in with your password.");
  ui.password.focus();
}

async function resendCode() {
  const result = await cognito("ResendConfirmationCode", {
    ClientId: config.userPoolWebClientId,
    Username: pendingConfirmation,
  });
  const destination = result.CodeDeliveryDetails && result.CodeDeliveryDetails.Destination;
  showNotice(destination ? `We sent a new code to ${destination}.` : "We sent a new code.");
}

async function signIn(email, password) {
  const result = await cognito("InitiateAuth", {
    ClientId: config.userPoolWebClientId,
    AuthFlow: "USER_PASSWORD_AUTH",
    AuthParameters: { USERNAME: email, PASSWORD: password },
  });
  if (!result.AuthenticationResult) {
    // MFA, a forced new password, …: the pool asks for a step this demo does not implement.
    throw new CognitoError(
      result.ChallengeName || "Challenge",
      `Cognito asks for an extra step (${result.ChallengeName}) that this page does not support.`,
    );
  }
  session = tokensFrom(result.AuthenticationResult, null);
  session.email = email;
  ui.password.value = "";
  ui.who.textContent = email;
  ui.messages.replaceChildren();
  ui.noMessages.hidden = false;
  clearBanners();
  showView("session");
  scheduleRefresh();
  connect();
  ui.message.focus();
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const lifetime = session.expiresAt - session.issuedAt;
  const margin = Math.min(REFRESH_MARGIN_MS, lifetime / 4);
  const delay = Math.max(0, session.expiresAt - margin - Date.now());
  refreshTimer = setTimeout(refreshOnSchedule, delay);
}

// Fresh tokens from the refresh token; concurrent callers share one request.
function refreshTokens() {
  if (!refreshing) {
    const current = session;
    refreshing = cognito("InitiateAuth", {
      ClientId: config.userPoolWebClientId,
      AuthFlow: "REFRESH_TOKEN_AUTH",
      AuthParameters: { REFRESH_TOKEN: current.refreshToken },
    })
      .then((result) => {
        if (session !== current) return; // signed out meanwhile
        session = tokensFrom(result.AuthenticationResult, current);
        scheduleRefresh();
        // Extend the open connection in place: a second socket would count against the
        // user's connections, and the messages in flight on this one would be lost.
        offerToken();
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

// Refreshes the tokens for whoever asked (the schedule, a reconnect). Resolves to "ok";
// "ended" when the session is over (signed out meanwhile, or the refresh token refused, in which
// case this signs out, saying `ended`); or "retry" when Cognito could not answer and the caller
// may try again.
async function refreshSession(ended = SESSION_EXPIRED) {
  const current = session;
  try {
    await refreshTokens();
    return "ok";
  } catch (error) {
    if (session !== current) return "ended";
    if (error.type === "NotAuthorizedException") {
      // The refresh token was revoked (a sign-out everywhere) or expired: nothing will work
      // until a new sign-in.
      if (signOutEverywhereAsked) signOut(SIGNED_OUT_HERE, { notice: true, revoke: false });
      else signOut(ended);
      return "ended";
    }
    return "retry";
  }
}

async function refreshOnSchedule() {
  if ((await refreshSession()) === "retry") {
    // Cognito unreachable: the current token still works for a while, try again soon.
    refreshTimer = setTimeout(refreshOnSchedule, REFRESH_RETRY_MS);
  }
}

// Ends the session on this page: `message` says why (an error, or with `notice` a notice);
// without one, "Signed out.". `revoke` asks Cognito to revoke the refresh token (not needed when
// the server already revoked them all).
function signOut(message, { notice = false, revoke = true } = {}) {
  const ending = session;
  session = null;
  pendingConfirmation = null;
  signOutEverywhereAsked = false;
  signOutEverywhereDone();
  clearTimeout(refreshTimer);
  refreshTimer = null;
  clearReconnect();
  const socket = connection.socket;
  // Forget the socket first, so its close event does not schedule a reconnect.
  connection.socket = null;
  connection.attempt = 0;
  if (socket) socket.close(1000, "signed out");
  connection.presented = null;
  showExpiry(null);
  setStatus("closed");
  updateSendButton();
  ui.messages.replaceChildren();
  if (ending) {
    ui.email.value = ending.email;
    // Revoke the refresh token so it cannot mint new tokens anywhere; best effort, since the
    // page has already forgotten it. The local cloud's embedded Cognito lacks the call.
    if (revoke && !config.local) {
      cognito("RevokeToken", {
        ClientId: config.userPoolWebClientId,
        Token: ending.refreshToken,
      }).catch(() => {});
    }
  }
  showView("auth");
  if (!message) showNotice("Signed out.");
  else if (notice) showNotice(message);
  else showError(message);
  ui.email.focus();
}

// Ask the server to end every session of this user, this one included. Its `signedOut` (to
// every connection of the user) is what signs this page out: the server has then revoked the
// refresh tokens, so nothing here could reconnect anyway.
function signOutEverywhere() {
  const socket = connection.socket;
  if (!session || !socket || socket.readyState !== WebSocket.OPEN) {
    showError("Not connected: cannot sign out everywhere now.");
    return;
  }
  if (signOutEverywhereTimer !== null) return; // already asked, waiting for the answer
  socket.send(JSON.stringify({ action: "signOutEverywhere" }));
  signOutEverywhereAsked = true;
  ui.signOutEverywhere.disabled = true;
  ui.signOutEverywhere.setAttribute("aria-busy", "true");
  showNotice("Signing out everywhere…");
  signOutEverywhereTimer = setTimeout(() => {
    signOutEverywhereDone();
    showError("The server did not confirm the sign-out everywhere: try again.");
  }, SIGN_OUT_EVERYWHERE_TIMEOUT_MS);
}

// The request is no longer waiting (answered, refused, timed out, or the session ended).
function signOutEverywhereDone() {
  clearTimeout(signOutEverywhereTimer);
  signOutEverywhereTimer = null;
  ui.signOutEverywhere.disabled = false;
  ui.signOutEverywhere.removeAttribute("aria-busy");
}

// ---------------------------------------------------------------------------------------------
// The WebSocket: exactly one, reconnected with backoff, closed on sign-out

function setStatus(state, text) {
  const words = text || state;
  if (ui.status.textContent !== words) ui.status.textContent = words;
  ui.status.dataset.state = state;
}

function updateSendButton() {
  const open = connection.socket !== null && connection.socket.readyState === WebSocket.OPEN;
  ui.send.disabled = !open;
}

function connect() {
  if (!session || connection.socket !== null) return;
  clearReconnect();
  setStatus("connecting");
  const source = connection.tokenSource || connection.trying;
  const url = new URL(config.webSocketEndpoint);
  const token = socketToken();
  let socket;
  try {
    if (source === "query") {
      url.searchParams.set("idToken", token);
      socket = new WebSocket(url.href);
    } else {
      // The token as a second offered subprotocol; `$connect` answers with "wsauth".
      socket = new WebSocket(url.href, ["wsauth", token]);
    }
  } catch {
    showError("Server unreachable: the WebSocket address is not valid.");
    setStatus("closed");
    return;
  }
  socket.binaryType = "arraybuffer";
  connection.socket = socket;
  connection.presented = token;
  let opened = false;
  socket.addEventListener("open", () => {
    if (connection.socket !== socket) return;
    opened = true;
    connection.tokenSource = source;
    connection.attempt = 0;
    connection.refused = false;
    connection.sessionChecked = false;
    setStatus("connected");
    updateSendButton();
    showExpiry(claimsOf(token).exp);
    if (ui.error.dataset.kind === "socket") clearBanners();
    // Tokens refreshed while the handshake was under way: extend the connection to them.
    offerToken();
  });
  socket.addEventListener("message", (event) => {
    if (connection.socket === socket) received(event.data);
  });
  socket.addEventListener("close", (event) => {
    if (connection.socket !== socket) return;
    connection.socket = null;
    updateSendButton();
    if (!session) {
      setStatus("closed");
      return;
    }
    if (signOutEverywhereTimer !== null) {
      // Closed before the server answered: whether it signed the user out is not known here.
      // The reconnect below finds out (a revoked session is refused, and so is its refresh).
      signOutEverywhereDone();
      showError("The connection closed before the server confirmed the sign-out everywhere.");
    }
    connection.refused = !opened;
    if (!opened && connection.tokenSource === null) {
      connection.trying = source === "query" ? "protocol" : "query";
      // The very first refusal may only mean "wrong place": try the other one at once.
      if (connection.attempt === 0 && source === "query") {
        connection.attempt = 1;
        connect();
        return;
      }
    }
    // 1006 before the socket ever opened: the handshake failed (network, or the token refused).
    if (event.code === 1006 && connection.attempt >= 2) {
      showError("Server unreachable: still trying to connect.", "socket");
    }
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  clearReconnect();
  const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.min(connection.attempt, 16));
  // "Equal jitter": half the wait fixed, half random. The random half keeps many clients dropped
  // at once (a deployment, a gateway restart) from coming back in lockstep; the fixed half
  // keeps the wait from collapsing to nothing.
  const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
  connection.attempt += 1;
  connection.reconnectAt = Date.now() + delay;
  connection.reconnectTimer = setTimeout(reconnect, delay);
  showCountdown();
  connection.countdownTimer = setInterval(showCountdown, 250);
}

function showCountdown() {
  const seconds = Math.max(1, Math.ceil((connection.reconnectAt - Date.now()) / 1000));
  setStatus("reconnecting", `reconnecting in ${seconds} s`);
}

function clearReconnect() {
  clearTimeout(connection.reconnectTimer);
  clearInterval(connection.countdownTimer);
  connection.reconnectTimer = null;
  connection.countdownTimer = null;
}

async function reconnect() {
  clearReconnect();
  const current = session;
  if (!current) return;
  // A token about to expire would be refused at the handshake: refresh it first. So, once per
  // run of failed handshakes, is one that was just refused: it may be a session ended by a
  // sign-out everywhere this page did not hear about (it was disconnected then), and only
  // Cognito's answer to the refresh token tells (else the page retries until the token expires).
  const checkSession = connection.refused && !connection.sessionChecked;
  if (checkSession || current.expiresAt - Date.now() < 60 * 1000) {
    const refreshed = await refreshSession(checkSession ? SESSION_ENDED : SESSION_EXPIRED);
    if (refreshed === "ok") connection.sessionChecked = true;
    if (refreshed === "retry") scheduleReconnect();
    if (refreshed !== "ok") return;
  }
  if (session) connect();
}

// The token the socket presents: the ID token, which the authorizer checks by default
// (config tokenUse "id"); the in-band refresh sends a fresh token of the same kind.
function socketToken() {
  return session.idToken;
}

// Offer the session's current token on the open socket, unless the socket already has it.
function offerToken() {
  const socket = connection.socket;
  if (!session || !socket || socket.readyState !== WebSocket.OPEN) return;
  const token = socketToken();
  if (connection.presented === token) return;
  connection.presented = token;
  socket.send(JSON.stringify({ action: "refreshToken", token }));
}

function showExpiry(epochSeconds) {
  if (typeof epochSeconds !== "number" || !Number.isFinite(epochSeconds)) {
    ui.expiryLine.hidden = true;
    return;
  }
  const when = new Date(epochSeconds * 1000);
  ui.expiry.dateTime = when.toISOString();
  ui.expiry.textContent = when.toLocaleTimeString();
  ui.expiryLine.hidden = false;
}

// The server's control messages ({"type": …}); anything else is shown as a message.
const CONTROL_TYPES = new Set([
  "tokenRefreshed",
  "tokenRejected",
  "sessionExpired",
  "signedOut",
  "signOutFailed",
]);

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function received(data) {
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  const parsed = parseJson(text);
  const isObject = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
  if (isObject && CONTROL_TYPES.has(parsed.type)) {
    handleControl(parsed);
    return;
  }
  // A stack older than in-band refresh echoes the request through $default: never show the
  // token it carries. One older than sign-out everywhere echoes that request: say so instead.
  if (isObject && typeof parsed.message === "string") {
    const echoed = parseJson(parsed.message);
    if (echoed && typeof echoed === "object" && echoed.action === "refreshToken") return;
    if (echoed && typeof echoed === "object" && echoed.action === "signOutEverywhere") {
      signOutEverywhereAsked = false;
      signOutEverywhereDone();
      showError("This server cannot sign out everywhere (its stack is older than this page).");
      return;
    }
  }
  showReceived(text, isObject ? parsed : undefined);
}

function handleControl(message) {
  if (message.type === "tokenRefreshed") {
    showExpiry(message.expiresAt);
    if (ui.error.dataset.kind === "refresh") clearBanners();
  } else if (message.type === "tokenRejected" && message.reason === "session_revoked") {
    // A sign-out everywhere ended this session: the connection ends, and so does every refresh.
    endedEverywhere();
  } else if (message.type === "tokenRejected") {
    const reason = REJECTION_REASONS[message.reason] || "the new token is not valid";
    const until = ui.expiryLine.hidden ? "" : ` at ${ui.expiry.textContent}`;
    // The connection keeps working until its old expiry; the server then ends it.
    showError(`Your session could not be extended (${reason}): it ends${until}.`, "refresh");
  } else if (message.type === "sessionExpired") {
    // The server closes the connection next; the token behind it is spent, so no reconnect.
    signOut(SESSION_EXPIRED);
  } else if (message.type === "signedOut") {
    // The server closes every connection of the user next and has revoked the refresh tokens.
    endedEverywhere();
  } else if (message.type === "signOutFailed") {
    // Sent to the asking connection only; nothing was closed, and asking again is safe.
    signOutEverywhereAsked = false;
    signOutEverywhereDone();
    showError("The server could not sign you out everywhere: try again.");
  }
}

function endedEverywhere() {
  if (signOutEverywhereAsked) signOut(SIGNED_OUT_HERE, { notice: true, revoke: false });
  else signOut(SIGNED_OUT_ELSEWHERE, { revoke: false });
}

function showReceived(raw, parsed) {
  let text = raw;
  // The echo and most pushes are {"message": …}; show the message itself when it is there.
  // Not JSON: shown as it came.
  if (parsed && "message" in parsed) {
    text = typeof parsed.message === "string" ? parsed.message : JSON.stringify(parsed.message);
  }
  const item = document.createElement("li");
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString();
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text; // text, never HTML: a message cannot inject markup
  item.append(time, body);
  ui.messages.prepend(item);
  while (ui.messages.children.length > MAX_SHOWN_MESSAGES) ui.messages.lastElementChild.remove();
  ui.noMessages.hidden = true;
}

// ---------------------------------------------------------------------------------------------
// Wiring

ui.authForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const email = ui.email.value.trim();
  const password = ui.password.value;
  const signingUp = event.submitter && event.submitter.value === "sign-up";
  if (!email || !password) {
    showError("Enter your email and a password.");
    (email ? ui.password : ui.email).focus();
    return;
  }
  clearBanners();
  whileBusy(ui.authForm, async () => {
    try {
      if (signingUp) await signUp(email, password);
      else await signIn(email, password);
    } catch (error) {
      if (error.type === "UserNotConfirmedException") {
        askForCode(email, "Your account is not confirmed yet.");
      }
      showError(describe(error));
    }
  });
});

ui.confirmForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = ui.code.value.trim();
  if (!code) {
    showError("Enter the confirmation code.");
    ui.code.focus();
    return;
  }
  clearBanners();
  whileBusy(ui.confirmForm, async () => {
    try {
      await confirmSignUp(code);
    } catch (error) {
      showError(describe(error));
    }
  });
});

ui.resendCode.addEventListener("click", () => {
  whileBusy(ui.confirmForm, async () => {
    try {
      await resendCode();
    } catch (error) {
      showError(describe(error));
    }
  });
});

ui.confirmBack.addEventListener("click", () => {
  pendingConfirmation = null;
  clearBanners();
  showView("auth");
  ui.email.focus();
});

ui.signOut.addEventListener("click", () => signOut(null));
ui.signOutEverywhere.addEventListener("click", signOutEverywhere);

ui.messageForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.message.value;
  const socket = connection.socket;
  if (!text) return;
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    showError("Not connected: the message was not sent.");
    return;
  }
  if (new TextEncoder().encode(text).length > MAX_MESSAGE_BYTES) {
    showError("This message is too long: the API accepts at most 32 KB.");
    return;
  }
  socket.send(text);
  ui.message.value = "";
  ui.message.focus();
});

// Back online: don't make the person wait out the backoff.
window.addEventListener("online", () => {
  if (session && connection.reconnectTimer !== null) reconnect();
});

async function start() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(String(response.status));
    config = await response.json();
  } catch {
    showError("Server unreachable: cannot load this page's settings. Reload to try again.");
    return;
  }
  showView("auth");
  ui.email.focus();
}

start();
