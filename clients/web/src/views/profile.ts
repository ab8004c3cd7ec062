/** The profile choices the relay accepts (docs/protocol.md, Register), with their labels. */

export const BOWSTYLES: ReadonlyArray<[string, string]> = [
  ["recurve", "Recurve"],
  ["compound", "Compound"],
  ["barebow", "Barebow"],
  ["longbow", "Longbow"],
  ["traditional", "Traditional"],
  ["flatbow", "Flatbow"],
  ["compoundlimited", "Compound limited"],
  ["compoundbarebow", "Compound barebow"],
];

export const AGE_GROUPS: ReadonlyArray<[string, string]> = [
  ["adult", "Adult"],
  ["over_50", "50+"],
  ["under_21", "Under 21"],
  ["under_18", "Under 18"],
  ["under_16", "Under 16"],
  ["under_15", "Under 15"],
  ["under_14", "Under 14"],
  ["under_12", "Under 12"],
];

export const GENDERS: ReadonlyArray<[string, string]> = [
  ["open", "Open"],
  ["female", "Female"],
];

export function labelOf(options: ReadonlyArray<[string, string]>, value: string): string {
  return options.find(([v]) => v === value)?.[1] ?? value;
}
