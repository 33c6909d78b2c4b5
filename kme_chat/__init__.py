"""kme-chat: a chat assistant whose knowledge can be corrected live, in conversation."""
