/**
 * Identity's domain: accounts and the rules their fields must satisfy. No
 * gRPC, no SQL and no cryptography in this file.
 */
import { InvalidFieldError } from "@meshwork/platform/errors";

export interface UserRecord {
  readonly id: string;
  /** Normalised: trimmed, NFC, lower case. Unique. */
  readonly email: string;
  readonly displayName: string;
  readonly createdAt: Date;
}

/** A user as stored, with the password hash that only sign-in reads. */
export interface UserCredentials extends UserRecord {
  readonly passwordHash: string;
}

export interface NewUser {
  readonly id: string;
  readonly email: string;
  readonly displayName: string;
  readonly passwordHash: string;
}

/** The platform's field error, re-exported so domain code and tests name it from here. */
export { InvalidFieldError };

/** Sign-up with an email that already has an account. */
export class EmailTakenError extends Error {
  override readonly name = "EmailTakenError";
  constructor() {
    // The email is not repeated: messages end up in logs, emails are personal data.
    super("an account with this email already exists");
  }
}

/** Wrong password or unknown email: deliberately one error, so the answer tells them apart in no way. */
export class InvalidCredentialsError extends Error {
  override readonly name = "InvalidCredentialsError";
  constructor() {
    super("email or password is incorrect");
  }
}

export const LIMITS = {
  maxEmailLength: 254,
  maxEmailLocalLength: 64,
  minPasswordLength: 8,
  maxPasswordLength: 128,
  maxDisplayNameLength: 80,
} as const;

/** Counts what a person sees as characters, not UTF-16 units: an emoji is one. */
const characters = (text: string): number => [...text].length;

/**
 * A character takes at most two UTF-16 units, so text longer than twice the
 * limit is refused before it is normalised or split: a 4 MB field costs nothing.
 */
const plainlyTooLong = (text: string, maxCharacters: number): boolean => text.length > maxCharacters * 2;

const WHITESPACE_OR_CONTROL = /[\s\p{Cc}]/u;
const CONTROL = /\p{Cc}/u;
/**
 * Invisible format characters (Unicode category Cf): zero-width spaces and
 * joiners (U+200B-U+200D), direction marks and embeddings (U+200E-U+200F,
 * U+202A-U+202E, U+2066-U+2069), the byte-order mark U+FEFF, soft hyphens.
 * They make two addresses or names look identical while differing, or
 * reorder how a name is shown, so they are refused rather than stripped: a
 * stripped character would be a silent change to what the person typed.
 * Line and paragraph separators (Zl, Zp) break a name's line the same way.
 */
const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}]/u;

/** "U+200B": names the first offending character without echoing the text (emails are personal data). */
const codePointOf = (text: string, pattern: RegExp): string => {
  const found = pattern.exec(text)?.[0] ?? "";
  return `U+${(found.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
};

/**
 * Trims, NFC-normalises and lower-cases the email, and checks it has the
 * shape local@domain. NFC makes a composed "é" (U+00E9) and "e" + U+0301 one
 * address, hence one account. Format characters are looked for before
 * trimming, because String.prototype.trim() silently removes U+FEFF.
 */
export function checkEmail(value: string): string {
  if (plainlyTooLong(value, LIMITS.maxEmailLength)) throw new InvalidFieldError("email", `must be at most ${LIMITS.maxEmailLength} characters`);
  if (INVISIBLE.test(value)) throw new InvalidFieldError("email", `must not contain invisible formatting characters (found ${codePointOf(value, INVISIBLE)})`);
  const email = value.trim().normalize("NFC").toLowerCase();
  if (email === "") throw new InvalidFieldError("email", "is required");
  if (email.length > LIMITS.maxEmailLength) throw new InvalidFieldError("email", `must be at most ${LIMITS.maxEmailLength} characters`);
  if (WHITESPACE_OR_CONTROL.test(email)) throw new InvalidFieldError("email", "must not contain spaces or control characters");
  const parts = email.split("@");
  if (parts.length !== 2) throw new InvalidFieldError("email", "must contain exactly one @");
  const [local = "", domain = ""] = parts;
  if (local === "" || domain === "") throw new InvalidFieldError("email", "must have text before and after the @");
  if (local.length > LIMITS.maxEmailLocalLength) throw new InvalidFieldError("email", `must have at most ${LIMITS.maxEmailLocalLength} characters before the @`);
  if (domain.startsWith(".") || domain.endsWith(".") || domain.includes("..")) throw new InvalidFieldError("email", "has a malformed domain");
  return email;
}

/**
 * A new password: 8 to 128 characters, taken as typed (no trimming: spaces
 * may be part of it) but in Unicode NFC, so the same password typed on two
 * systems that compose accents differently is the same password.
 */
export function checkNewPassword(value: string): string {
  if (plainlyTooLong(value, LIMITS.maxPasswordLength)) throw new InvalidFieldError("password", `must be ${LIMITS.minPasswordLength} to ${LIMITS.maxPasswordLength} characters`);
  const password = value.normalize("NFC");
  const length = characters(password);
  if (length < LIMITS.minPasswordLength || length > LIMITS.maxPasswordLength) {
    throw new InvalidFieldError("password", `must be ${LIMITS.minPasswordLength} to ${LIMITS.maxPasswordLength} characters`);
  }
  return password;
}

/**
 * A password offered at sign-in. Only its presence and the upper bound are
 * checked: a stricter minimum introduced later must not lock out accounts
 * created under the old one, and the bound keeps hashing cheap to refuse.
 * These checks look at the input alone, so they reveal nothing about accounts.
 */
export function checkOfferedPassword(value: string): string {
  if (plainlyTooLong(value, LIMITS.maxPasswordLength)) throw new InvalidFieldError("password", `must be at most ${LIMITS.maxPasswordLength} characters`);
  const password = value.normalize("NFC");
  if (password === "") throw new InvalidFieldError("password", "is required");
  if (characters(password) > LIMITS.maxPasswordLength) throw new InvalidFieldError("password", `must be at most ${LIMITS.maxPasswordLength} characters`);
  return password;
}

/** A display name: trimmed and NFC-normalised; control and invisible formatting characters refused (see INVISIBLE). */
export function checkDisplayName(value: string): string {
  if (plainlyTooLong(value.trim(), LIMITS.maxDisplayNameLength)) throw new InvalidFieldError("display_name", `must be 1 to ${LIMITS.maxDisplayNameLength} characters (after trimming spaces)`);
  if (INVISIBLE.test(value)) throw new InvalidFieldError("display_name", `must not contain invisible formatting characters (found ${codePointOf(value, INVISIBLE)})`);
  const name = value.trim().normalize("NFC");
  const length = characters(name);
  if (length < 1 || length > LIMITS.maxDisplayNameLength) {
    throw new InvalidFieldError("display_name", `must be 1 to ${LIMITS.maxDisplayNameLength} characters (after trimming spaces)`);
  }
  if (CONTROL.test(name)) throw new InvalidFieldError("display_name", "must not contain control characters");
  return name;
}

export interface SignUpInput {
  readonly email: string;
  readonly password: string;
  readonly displayName: string;
}

/** Every rule of a sign-up, checked before anything is hashed or written; names the first field that breaks one. */
export function checkSignUp(input: SignUpInput): SignUpInput {
  return {
    email: checkEmail(input.email),
    password: checkNewPassword(input.password),
    displayName: checkDisplayName(input.displayName),
  };
}

export function checkSignIn(input: { email: string; password: string }): { email: string; password: string } {
  return { email: checkEmail(input.email), password: checkOfferedPassword(input.password) };
}
