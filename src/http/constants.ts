/**
 * Names the CloudEvents HTTP binding v1.0.2 fixes: media types of the JSON
 * event formats and the attribute header prefix.
 *
 * @module
 */

/** `"ce-"`, the prefix of every attribute header in binary mode. */
export const ATTRIBUTE_HEADER_PREFIX = "ce-";

/** Media type of one event in the JSON format (structured mode). */
export const STRUCTURED_MEDIA_TYPE = "application/cloudevents+json";

/** Media type of a batch in the JSON batch format. */
export const BATCH_MEDIA_TYPE = "application/cloudevents-batch+json";

/** What every structured-mode media type starts with, whatever its event format. */
export const STRUCTURED_PREFIX = "application/cloudevents+";

/** `Content-Type` sent with a structured-mode event. */
export const STRUCTURED_CONTENT_TYPE = `${STRUCTURED_MEDIA_TYPE}; charset=utf-8`;

/** `Content-Type` sent with a batch. */
export const BATCH_CONTENT_TYPE = `${BATCH_MEDIA_TYPE}; charset=utf-8`;
