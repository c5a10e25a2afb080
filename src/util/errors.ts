/**
 * One error type for every user-facing failure: it names the place (file, record, field) so that
 * a user with a 1 GB log can find the bad line. The CLI prints `message` and exits non-zero.
 */
export interface ErrorPlace {
  file?: string;
  /** 0-based record index (array element or JSONL line - 1). Printed 0-based as "record N". */
  record?: number;
  field?: string;
}

export class LenpredError extends Error {
  readonly place: ErrorPlace;
  constructor(message: string, place: ErrorPlace = {}) {
    super(formatPlace(place) + message);
    this.name = "LenpredError";
    this.place = place;
  }
}

function formatPlace(place: ErrorPlace): string {
  const parts: string[] = [];
  if (place.file !== undefined) parts.push(place.file);
  if (place.record !== undefined) parts.push(`record ${place.record}`);
  if (place.field !== undefined) parts.push(`field '${place.field}'`);
  return parts.length ? parts.join(", ") + ": " : "";
}
