/** Confirmation dialogs for what cannot be undone. */
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';

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
  const [state, setState] = useState<
    (ConfirmRequest & { resolve: (v: string | undefined) => void }) | undefined
  >();
  const ask = useCallback(
    (request: ConfirmRequest) =>
      new Promise<string | undefined>((resolve) => setState({ ...request, resolve })),
    [],
  );
  useEffect(() => {
    if (state !== undefined && ref.current !== null && !ref.current.open) ref.current.showModal();
  }, [state]);
  const close = (value: string | undefined) => {
    ref.current?.close();
    state?.resolve(value);
    setState(undefined);
  };
  const dialog = (
    <dialog ref={ref} aria-labelledby="confirm-title" onCancel={() => close(undefined)}>
      {state !== undefined && (
        <>
          <h3 id="confirm-title">{state.title}</h3>
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
            <button type="button" onClick={() => close(undefined)} autoFocus>
              {state.dismissLabel ?? 'Cancel'}
            </button>
          </div>
        </>
      )}
    </dialog>
  );
  return [ask, dialog];
}
