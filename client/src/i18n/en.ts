/** English. Keys are grouped by screen; catalogue.ts says what a value may be. */
export const EN = {
  /** The tab's title until the organization's own (neutral) one is known. */
  'page.title': 'Notes',
  'page.loading': 'Loading…',
  'page.language': 'Language',

  'exit.button': 'Quick exit',
  'exit.hint': 'Or press Shift three times.',
  'exit.limits':
    'Quick exit leaves this page at once and removes it from this tab’s Back history. It cannot erase the browser’s overall history or hide this site’s address from your network: a private window does more.',

  'welcome.heading': 'Talk safely with the coordinators',
  'welcome.intro':
    'Your messages are encrypted on this device. Only the coordinators of {org} can read them.',
  'welcome.safety.heading': 'Before you start',
  'welcome.safety.private':
    'Use a private (incognito) window. In a normal tab, the browser and the keyboard may remember what you type.',
  'welcome.safety.close': 'Close the tab when you are done.',
  'welcome.safety.exit': 'The “Quick exit” button at the top leaves this page at once.',
  'welcome.start': 'Start a new conversation',
  'welcome.resume': 'I have a codename',
  'welcome.check.heading': 'Is this really {org}?',
  'welcome.check.body':
    'People pretending to help have been used to trap others. Compare this number with the one the organization publishes on its own website or printed cards. If they are not the same, do not write here.',
  'welcome.check.digits': 'Organization number',
  'welcome.check.words': 'The same as words',

  'intake.heading': 'A few questions',
  'intake.intro':
    'Your answers help the coordinators see how urgent this is. They are encrypted like your messages.',
  'intake.required': '(required)',
  'intake.optional': '(optional)',
  'intake.error.required': 'Please answer this question.',
  'intake.error.too_long': {
    one: 'Please shorten this answer to {count} character.',
    other: 'Please shorten this answer to {count} characters.',
  },
  'intake.error.summary': {
    one: '{count} question still needs an answer.',
    other: '{count} questions still need an answer.',
  },
  'intake.chars_left': {
    one: '{count} character left',
    other: '{count} characters left',
  },
  'intake.next': 'Next',
  'intake.back': 'Back',

  'message.heading': 'Your first message',
  'message.label': 'What would you like to tell the coordinators?',
  'message.hint':
    'Write in your own words. Do not write your full name or address unless you decide it is safe. You can send more later.',
  'message.error.empty': 'Please write a message.',
  'message.send': 'Send',

  'sending.heading': 'Sending your message…',
  'sending.body':
    'Your device is making its keys and protecting the message. This takes a few seconds; please keep this page open.',
  'sending.failed': 'The message could not be sent. Check your connection and try again.',
  'sending.retry': 'Try again',

  'codename.heading': 'Your codename',
  'codename.sent': 'Your message was sent.',
  'codename.body':
    'These words are the only way back to this conversation, from this device or another. Write them down on paper and keep them somewhere safe. If you lose them, the conversation cannot be recovered: nobody, not even the coordinators, knows your words.',
  'codename.words': 'Codename words',
  'codename.continue': 'I have written them down',

  'confirm.heading': 'Check that you wrote it down',
  'confirm.body':
    'Type words number {a}, {b} and {c} from your paper, in this order, separated by spaces. This makes sure you can come back.',
  'confirm.label': 'Words {a}, {b} and {c}',
  'confirm.check': 'Check',
  'confirm.show_again': 'Show the words again',
  'confirm.count': 'Please type three words: number {a}, {b} and {c}.',
  'confirm.mismatch':
    'These are not the words number {a}, {b} and {c}. Look at your paper again, or show the words again and correct what you wrote.',

  'chat.heading': 'Your conversation',
  'chat.you': 'You',
  'chat.team': 'Coordinators',
  'chat.state.queued': 'Waiting to send',
  'chat.state.sent': 'Sent',
  'chat.state.delivered': 'Delivered',
  'chat.state.read': 'Read',
  'chat.state.failed': 'Not sent',
  'chat.link.connecting': 'Connecting…',
  'chat.link.ready': 'Connected',
  'chat.link.reconnecting': 'Connection lost — reconnecting…',
  'chat.link.closed': 'Disconnected',
  'chat.label': 'Message',
  'chat.send': 'Send',
  'chat.empty':
    'The coordinators will answer here. You can close this page and come back later with your codename.',

  'chat.status.label': 'Case status:',
  'chat.status.received': 'the coordinators have received your messages.',
  'chat.status.in_progress': 'the coordinators are working on it.',
  'chat.status.waiting_for_you': 'the coordinators are waiting for your answer.',
  'chat.status.closed': 'closed by the coordinators. If you need help again, write here.',

  'file.label': 'Send a photo or a document',
  'file.hint':
    'Photos are cleaned on this device before they are sent: hidden details such as the place and the camera are removed. The largest file is {size}.',
  'file.choose': 'Choose a file',
  'file.reading': 'Checking the file…',
  'file.cleaned':
    '“{name}” is ready. Hidden details such as the place where it was taken were removed.',
  'file.unchecked':
    'Hidden details (such as the place, the author’s name or the device) cannot be removed from “{name}”: only JPEG, PNG and WebP photos can be cleaned. Send it only if you are sure it says nothing about you.',
  'file.too_large': 'This file is too large. The largest file you can send is {size}.',
  'file.empty': 'This file is empty or could not be read.',
  'file.send': 'Send the file',
  'file.send_anyway': 'Send it anyway',
  'file.cancel': 'Cancel',
  'file.sending': 'Sending… {percent}%',
  'file.save': 'Save the file',
  'file.save_note': 'A saved file stays in this device’s downloads until you delete it.',
  'file.opening': 'Opening…',
  'file.open_failed':
    'The file could not be opened. It may have expired; ask the coordinators to send it again.',

  'delete.button': 'Delete my conversation',
  'delete.heading': 'Delete this conversation?',
  'delete.body':
    'The conversation saved on the server and the messages still waiting there are deleted, and your codename will no longer open it. The coordinators keep what they have already received. The page then closes.',
  'delete.confirm': 'Delete and leave',
  'delete.cancel': 'Keep the conversation',
  'delete.busy': 'Deleting…',
  'delete.failed': 'The conversation could not be deleted. Check your connection and try again.',

  'resume.heading': 'Back to your conversation',
  'resume.label': 'Your codename',
  'resume.hint': 'Type the words, separated by spaces.',
  'resume.show': 'Show the words',
  'resume.open': 'Open the conversation',
  'resume.busy': 'Checking your codename… this can take a few seconds.',
  'resume.invalid':
    'Some of these words are not codename words. Please check how they are written.',
  'resume.not_found':
    'We could not open a conversation with these words. Please check them and try again. A conversation that was deleted, or left for a long time, is gone.',
  'resume.failed': 'The conversation could not be opened. Check your connection and try again.',

  'error.heading': 'This page cannot be used right now',
  'error.no_organization': 'No organization is set up on this server.',
  'error.profile_invalid':
    'The organization’s details could not be checked. Do not write here; try again later.',
  'error.unreachable': 'The server cannot be reached. Check your connection and try again.',
  'error.retry': 'Try again',

  'demo.badge': 'DEMO',
  'demo.notice': 'This is a demonstration organization. Do not write anything real here.',

  'noscript.body':
    'This page needs JavaScript. In Tor Browser, choose the “Safer” security level instead of “Safest”, then reload.',
} as const;
