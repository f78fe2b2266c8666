import { StrictMode, useEffect, useState, type FormEvent } from "react";
import { createRoot } from "react-dom/client";
import { Chat } from "./chat.tsx";
import { chatIdFromUrl, loadHistory, savedToken, signIn, type SluiceMessage } from "./sluice.ts";

function SignIn({ onToken }: { onToken: (token: string) => void }) {
  const [failure, setFailure] = useState<string>();
  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const field = (name: string): string => (event.currentTarget.elements.namedItem(name) as HTMLInputElement).value;
    signIn(field("email"), field("password")).then(onToken, (error: unknown) => setFailure(String(error)));
  };
  return (
    <form onSubmit={onSubmit}>
      <input name="email" type="email" placeholder="email" aria-label="Email" />
      <input name="password" type="password" placeholder="password" aria-label="Password" />
      <button type="submit">Sign in to Sluice</button>
      {failure && <p role="alert">{failure}</p>}
    </form>
  );
}

function App() {
  const [token, setToken] = useState(savedToken);
  const [chatId] = useState(chatIdFromUrl);
  const [history, setHistory] = useState<SluiceMessage[]>();
  const [failure, setFailure] = useState<string>();
  useEffect(() => {
    // The history first: useChat takes its initial messages once, when it is created.
    if (token) loadHistory(chatId, token).then(setHistory, (error: unknown) => setFailure(String(error)));
  }, [chatId, token]);
  if (!token) return <SignIn onToken={setToken} />;
  if (failure) return <p role="alert">{failure}</p>;
  if (!history) return <p>Loading…</p>;
  return <Chat chatId={chatId} token={token} history={history} />;
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
