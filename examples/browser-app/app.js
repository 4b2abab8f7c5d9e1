// The example browser app: signs in with authorization code + PKCE (RFC 7636) through the
// auth-service's login page, calls the resource-service across origins with the access token,
// refreshes, and signs out. It never sees a password.
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;
let config;

function show(status, signedIn) {
  $("status").textContent = status;
  $("sign-in").hidden = signedIn;
  for (const id of ["call", "refresh", "sign-out"]) $(id).hidden = !signedIn;
}

function base64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

function redirectUri() {
  return window.location.origin + "/index.html";
}

async function signIn() {
  const verifier = random(32);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = random(16);
  store.setItem("pkce_verifier", verifier);
  store.setItem("oauth_state", state);
  const url = new URL(config.auth_url + "/oauth/authorize");
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: "api",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

async function tokenRequest(params) {
  const res = await fetch(config.auth_url + "/oauth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.client_id, ...params }).toString(),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error + ": " + body.error_description);
  return body;
}

function keep(tokens) {
  store.setItem("access_token", tokens.access_token);
  store.setItem("refresh_token", tokens.refresh_token);
  store.setItem("expires_at", String(Date.now() + tokens.expires_in * 1000));
}

async function finishSignIn(params) {
  // Back from the login page: the state must be ours, the issuer the one we sent the user to.
  const state = store.getItem("oauth_state");
  const verifier = store.getItem("pkce_verifier");
  store.removeItem("oauth_state");
  store.removeItem("pkce_verifier");
  history.replaceState(null, "", redirectUri());
  if (!state || params.get("state") !== state) throw new Error("state does not match");
  if (params.get("iss") !== config.issuer) throw new Error("unexpected issuer");
  if (params.get("error")) throw new Error(params.get("error") + ": " + params.get("error_description"));
  keep(await tokenRequest({
    grant_type: "authorization_code",
    code: params.get("code"),
    redirect_uri: redirectUri(),
    code_verifier: verifier,
  }));
}

async function callApi() {
  const res = await fetch(config.resource_url + "/v1/whoami", {
    headers: { Authorization: "Bearer " + store.getItem("access_token") },
  });
  const body = await res.json();
  if (!res.ok) throw new Error(res.status + " " + body.code);
  $("whoami").textContent = JSON.stringify(body, null, 2);
  show("Signed in as " + body.username, true);
}

async function refresh() {
  keep(await tokenRequest({ grant_type: "refresh_token", refresh_token: store.getItem("refresh_token") }));
  await callApi();
  $("status").textContent += " (refreshed)";
}

async function signOut() {
  const token = store.getItem("refresh_token");
  store.clear();
  $("whoami").textContent = "";
  if (token) {
    // Ends this app's session everywhere (its refresh token and every access token of it).
    await fetch(config.auth_url + "/oauth/revoke", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token, token_type_hint: "refresh_token", client_id: config.client_id }).toString(),
    });
  }
  show("Signed out", false);
}

function guard(f) {
  return () => f().catch((e) => show("Error: " + e.message, Boolean(store.getItem("access_token"))));
}

async function main() {
  config = await (await fetch("config.json")).json();
  $("sign-in").addEventListener("click", guard(signIn));
  $("call").addEventListener("click", guard(callApi));
  $("refresh").addEventListener("click", guard(refresh));
  $("sign-out").addEventListener("click", guard(signOut));
  const params = new URLSearchParams(window.location.search);
  if (params.has("code") || params.has("error")) await finishSignIn(params);
  if (store.getItem("access_token")) await callApi();
  else show("Signed out", false);
}

main().catch((e) => show("Error: " + e.message, false));
