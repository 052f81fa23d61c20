-- Store.resend_link: a registration's link again, to the address it uses, on its owner's request.
--
-- KEYS: registration, outbox
-- ARGV: the email fingerprint the request was for, the outbox message (JSON)
-- The message is written only if the registration still exists and still uses
-- that address (it may have changed since the caller looked): never to an
-- address it has left. Returns 1 if written, 0 otherwise.

local stored = redis.call('HGET', KEYS[1], FIELD.email_fp) or redis.call('HGET', KEYS[1], 'email_fp')
if not stored or print_text(stored) ~= ARGV[1] then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
