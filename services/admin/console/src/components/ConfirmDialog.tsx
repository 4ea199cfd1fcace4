/** Confirmation dialogs for what cannot be undone. */
import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from 'react';

/**
 * Confirmation for destructive actions: a modal dialog with the choices spelled out, and a button
 * that changes nothing (`dismissLabel`, "Cancel" unless that would read like one of the choices).
 */
interface ConfirmRequest {
  title: string;
  body: ReactNode;
  choices: { label: string; value: string; danger?: boolean }[];
  dismissLabel?: string;
}

export function useConfirm(): [(request: ConfirmRequest) => Promise<string | undefined>, ReactNode] {
  const ref = useRef<HTMLDialogElement>(null);
  const dismissRef = useRef<HTMLButtonElement>(null);
  const titleId = useId();
  const [state, setState] = useState<
    (ConfirmRequest & { resolve: (v: string | undefined) => void; opener: Element | null }) | undefined
  >();
  const ask = useCallback(
    (request: ConfirmRequest) =>
      new Promise<string | undefined>((resolve) =>
        setState({ ...request, resolve, opener: document.activeElement }),
      ),
    [],
  );
  useEffect(() => {
    if (state === undefined || ref.current === null || ref.current.open) return;
    ref.current.showModal();
    // showModal() focuses the first button, which is a destructive choice: Enter or a double
    // click must not confirm it, so the choice that changes nothing takes the focus.
    dismissRef.current?.focus();
  }, [state]);
  const close = (value: string | undefined) => {
    ref.current?.close();
    state?.resolve(value);
    // Back to where the user was (the row's button), as after any dialog.
    if (state?.opener instanceof HTMLElement) state.opener.focus();
    setState(undefined);
  };
  const dialog = (
    <dialog ref={ref} aria-labelledby={titleId} onCancel={() => close(undefined)}>
      {state !== undefined && (
        <>
          <h2 id={titleId}>{state.title}</h2>
          <div>{state.body}</div>
          <div className="actions">
            {state.choices.map((c) => (
              <button
                key={c.value}
                type="button"
                className={c.danger === true ? 'danger' : ''}
                onClick={() => close(c.value)}
              >
                {c.label}
              </button>
            ))}
            <button type="button" className="secondary" ref={dismissRef} onClick={() => close(undefined)}>
              {state.dismissLabel ?? 'Cancel'}
            </button>
          </div>
        </>
      )}
    </dialog>
  );
  return [ask, dialog];
}
