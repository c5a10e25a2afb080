/**
 * OpenAI-chat bodies → one prompt. The rule (documented in docs/serve.md): the prompt is the text of the
 * LAST message whose role is "user"; string content is used as is, and array content contributes its
 * `{type: "text", text}` parts joined by "\n" (image/audio parts are ignored). System prompts and earlier
 * turns are dropped because the predictor is trained on single-turn Alpaca instructions, and the last user
 * turn is what the assistant is about to answer. Schemas have already checked the shapes; this only picks.
 */

export type ChatContentPart = { type: string; text?: string; [k: string]: unknown };

export interface ChatMessage {
  role: string;
  content?: string | ChatContentPart[] | null;
  [k: string]: unknown;
}

export class ChatPromptError extends Error {
  constructor(message: string, readonly field: string) {
    super(message);
  }
}

export function messageText(content: ChatMessage["content"]): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  return content.filter((p) => p.type === "text" && typeof p.text === "string").map((p) => p.text as string).join("\n");
}

/**
 * The prompt the predictor sees for a chat request. Throws ChatPromptError naming the field when there is
 * none, or when the joined text parts exceed `maxChars` code points (each part is already length-checked).
 */
export function chatPrompt(messages: readonly ChatMessage[], maxChars = Infinity): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role !== "user") continue;
    const text = messageText(m.content);
    const field = `messages[${i}].content`;
    if (text.trim() === "") throw new ChatPromptError(`${field} (the last user message) has no text`, field);
    if (text.length > maxChars && [...text].length > maxChars) {
      throw new ChatPromptError(`${field} (the last user message) is longer than ${maxChars} characters`, field);
    }
    return text;
  }
  throw new ChatPromptError("messages has no message with role 'user' to predict a reply to", "messages");
}
