/** A JSON value: what may cross the workflow/activity boundary and sit in history. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
