"""What the channels on Meta's Graph API share (the WhatsApp Cloud API and Messenger), so that
each of them is its own platform's rules and nothing more:

- `graph`: the Graph API client (one HTTP client, the token in a header, Graph's error body as a
  typed `GraphError`, rate limits waited out) and how its errors read as a `SendError`;
- `accounts`: a deployment's credentials (access token, app secret, options) as one encrypted
  JSON string, read once, and a token Meta refuses reported as a broken deployment;
- `webhook`: the verification challenge, `X-Hub-Signature-256`, and the routes
  `GET|POST /{kind}/{deployment_id}`;
- `window`: the messaging window (an end user's last message, from memory or the stored
  conversation);
- `text`: a model's Markdown in a platform's own marks, split at its message limit;
- `media`: a file as it goes to a platform, refused for good over the platform's limit;
- `channel`: the channel's own plumbing (Graph client, deployments, window, webhook details);
- `plugin`: the channel plugin, and its one setting (the Graph API URL).
"""
