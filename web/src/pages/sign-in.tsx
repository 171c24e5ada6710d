import { timestampMs } from "@bufbuild/protobuf/wkt";
import { useMutation } from "@connectrpc/connect-query";
import { IdentityService, type SignInResponse } from "@meshwork/contracts/shop/identity/v1/identity";
import { useState, type FormEvent } from "react";
import { Link, useLocation } from "wouter";
import { ErrorNotice } from "../error-notice.js";
import { sessionStore, useSession } from "../session.js";

function keep(response: SignInResponse): void {
  sessionStore.signIn({
    token: response.accessToken,
    expiresAt: response.expireTime ? timestampMs(response.expireTime) : Date.now() + 15 * 60_000,
    user: { id: response.user?.id ?? "", email: response.user?.email ?? "", displayName: response.user?.displayName ?? "" },
  });
}

export function SignInPage({ mode }: { mode: "sign-in" | "sign-up" }) {
  const [, navigate] = useLocation();
  const { expired } = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const signIn = useMutation(IdentityService.method.signIn, {
    onSuccess: (response) => {
      keep(response);
      navigate("/");
    },
  });
  const signUp = useMutation(IdentityService.method.signUp, {
    onSuccess: () => signIn.mutate({ email, password }),
  });
  const busy = signIn.isPending || signUp.isPending;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (mode === "sign-up") signUp.mutate({ email, password, displayName });
    else signIn.mutate({ email, password });
  };

  return (
    <section className="narrow">
      <h1>{mode === "sign-up" ? "Create an account" : "Sign in"}</h1>
      {expired && mode === "sign-in" && <div className="notice">Your session has expired. Please sign in again.</div>}
      <form onSubmit={submit} className="stack">
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        {mode === "sign-up" && (
          <label>
            Your name
            <input autoComplete="name" required maxLength={80} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
          </label>
        )}
        <label>
          Password
          <input
            type="password"
            autoComplete={mode === "sign-up" ? "new-password" : "current-password"}
            required
            minLength={mode === "sign-up" ? 8 : 1}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {signUp.error && <ErrorNotice error={signUp.error} context="sign-up" />}
        {signIn.error && <ErrorNotice error={signIn.error} context="sign-in" />}
        <button type="submit" className="primary" disabled={busy}>
          {mode === "sign-up" ? "Create account" : "Sign in"}
        </button>
      </form>
      <p>{mode === "sign-up" ? <Link href="/signin">I already have an account</Link> : <Link href="/signup">Create an account</Link>}</p>
    </section>
  );
}
