// A small password strength estimate for the setup form's meter: what an attacker guessing
// smartly would face, in plain words. Not a policy: the server's rule (at least 10 characters;
// under 14 they must mix letters, digits or symbols; not a common password) decides, this only
// helps choose.
//
//   estimate("correct horse battery", {username: "admin"})
//     → {score: 0..4, label: "Strong", bits: 71, hints: ["…"]}
//
// How: each character adds the bits of the character classes in use (lower, upper, digits,
// symbols, other), except characters that repeat the one before ("aaa"), continue a run
// ("abc", "321") or a keyboard row ("qwerty", "asdf"), or repeat an earlier chunk ("abcabc"):
// those count a quarter. A common password, or one made of a common word and a few digits or
// symbols, counts as a handful of bits whatever its length; the user name inside it counts nothing.

const COMMON = new Set(`123456 1234567 12345678 123456789 1234567890 0123456789 password passw0rd
password1 password123 qwerty qwerty123 qwertyuiop asdfghjkl zxcvbnm abc123 111111 000000 123123
iloveyou admin administrator welcome welcome1 letmein monkey dragon football baseball sunshine
princess master shadow superman batman trustno1 freedom whatever qazwsx michael charlie jennifer
hunter starwars secret changeme default login access hello hello123 computer internet burrow
pihole raspberry raspberrypi router network homenetwork wifi wireless summer winter spring autumn
mustang jordan harley ranger daniel thomas killer pepper ginger cookie cheese chocolate butterfly
flower purple orange yellow banana matrix soccer hockey tigger buster lovely family qwerty1
1q2w3e4r 1qaz2wsx zaq12wsx q1w2e3r4 aa123456 abcdef abcdefg abcdefgh abcd1234 test test123
guest user root toor pass passwd p@ssw0rd p@ssword secret123 admin123 adminadmin`.split(/\s+/));

const ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890", "qwertzuiop", "azertyuiop"];

const LABELS = ["Very weak", "Weak", "Fair", "Strong", "Very strong"];

function classesOf(password) {
  const c = {lower: false, upper: false, digit: false, symbol: false, other: false};
  for (const ch of password) {
    if (/[a-z]/.test(ch)) c.lower = true;
    else if (/[A-Z]/.test(ch)) c.upper = true;
    else if (/[0-9]/.test(ch)) c.digit = true;
    else if (/[\x20-\x7e]/.test(ch)) c.symbol = true;
    else c.other = true;
  }
  return c;
}

function poolSize(c) {
  return (c.lower ? 26 : 0) + (c.upper ? 26 : 0) + (c.digit ? 10 : 0) + (c.symbol ? 33 : 0) + (c.other ? 100 : 0);
}

function onRow(a, b) {
  return ROWS.some((row) => {
    const i = row.indexOf(a);
    return i >= 0 && (row[i + 1] === b || row[i - 1] === b);
  });
}

/** How many characters really count, and which patterns were found. */
function effectiveLength(password) {
  const chars = [...password.toLowerCase()];
  const found = {repeat: false, sequence: false};
  let length = 0;
  for (let i = 0; i < chars.length; i += 1) {
    const prev = chars[i - 1];
    const cur = chars[i];
    let cheap = false;
    if (i >= 2 && cur === prev && prev === chars[i - 2]) {
      cheap = found.repeat = true;
    } else if (i >= 2) {
      const d1 = cur.codePointAt(0) - prev.codePointAt(0);
      const d0 = prev.codePointAt(0) - chars[i - 2].codePointAt(0);
      if ((d1 === 1 || d1 === -1) && d1 === d0) cheap = found.sequence = true;
      else if (onRow(chars[i - 2], prev) && onRow(prev, cur) && cur !== chars[i - 2]) cheap = found.sequence = true;
    }
    // A chunk of 3 or more seen just before ("abcabc", "xyz!xyz!"): this character repeats it.
    if (!cheap) {
      for (let n = 3; n <= i / 2 + 1 && !cheap; n += 1) {
        if (i + 1 >= 2 * n && chars.slice(i + 1 - n, i + 1).join("") === chars.slice(i + 1 - 2 * n, i + 1 - n).join("")) {
          cheap = found.repeat = true;
        }
      }
    }
    length += cheap ? 0.25 : 1;
  }
  return {length, found};
}

function isCommon(password) {
  const low = password.toLowerCase();
  if (COMMON.has(low)) return true;
  // A common word with a few digits or symbols around it ("Password1!", "!!admin2024").
  const core = low.replace(/^[^a-z]{0,4}/, "").replace(/[^a-z]{0,4}$/, "");
  return core.length >= 3 && COMMON.has(core);
}

export function estimate(password, {username = ""} = {}) {
  const pw = String(password || "");
  const hints = [];
  if (!pw) return {score: 0, label: "", bits: 0, hints};
  const classes = classesOf(pw);
  const perChar = Math.log2(Math.max(poolSize(classes), 2));
  let {length, found} = effectiveLength(pw);
  const name = String(username || "").trim().toLowerCase();
  if (name.length >= 3 && pw.toLowerCase().includes(name)) {
    length = Math.max(0, length - name.length + 0.25);
    hints.push("Do not put your user name in the password.");
  }
  let bits = length * perChar;
  const common = isCommon(pw);
  if (common) {
    bits = Math.min(bits, 10);
    hints.unshift("This is one of the most common passwords: it is guessed first.");
  }
  if (found.repeat) hints.push("Avoid repeats such as \"aaa\" or \"abcabc\".");
  if (found.sequence) hints.push("Avoid sequences such as \"abc\", \"123\" or \"qwerty\".");
  const chars = [...pw].length;
  if (chars < 10) {
    hints.unshift(`Burrow needs at least 10 characters (this has ${chars}).`);
  } else if (chars < 14 && Object.values(classes).filter(Boolean).length < 2) {
    hints.unshift("Under 14 characters, mix letters with digits or symbols, or make it longer.");
  }
  if (bits < 60 && !common) hints.push("Longer is stronger: three or four unrelated words make a good password.");
  const score = bits < 28 ? 0 : bits < 40 ? 1 : bits < 60 ? 2 : bits < 80 ? 3 : 4;
  return {score: chars < 10 ? Math.min(score, 1) : score, label: LABELS[chars < 10 ? Math.min(score, 1) : score],
          bits: Math.round(bits), hints};
}
