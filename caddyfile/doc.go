// Package caddyfile parses the tokengate directive's block into its JSON
// configuration (config.Gateway). This comment is the one description of
// the syntax; what each option does and its default are documented on the
// config field it sets (go doc -all ./config), which names its JSON key.
// TestDocListsEveryOption fails when the parser accepts an option that is
// not listed here, or the other way round; TestEveryJSONFieldHasASpelling
// when a JSON field has no spelling here.
//
//	tokengate [<matcher>] {
//		issuer            <url>                     # default: from the site address, e.g. https://api.example.com
//		audience          <aud>                     # default: the issuer
//		store             sqlite <path> | postgres <dsn>
//		master_key        <64 hex digits | base64>  # e.g. {env.TOKENGATE_MASTER_KEY}; default: generated
//		signing_alg       EdDSA | ES256 | RS256 | HS256
//		key_rotation      <duration>
//		access_ttl        <duration>
//		refresh_ttl       <duration>
//		refresh_grace     <duration> | off          # retry window of a used refresh token; default 30s
//		secret_ttl        <duration>
//		secret_grace      <duration>
//		secret_max_ttl    <duration>
//		single_session
//		issuing           on | off                  # off: validate only
//		token_service     on | off                  # off: no /user/… and /entity/… routes
//		realm             <realm>
//		user   <name> <password-hash> [roles <r>...] [scopes <s>...] [email <address>] [name <display-name>]
//		client <id>   <secret-hash> | public          [roles <r>...] [scopes <s>...] [grants <g>...]
//		client <id>   <secret-hash> | public          redirect_uri <uri>... [post_logout_redirect_uri <uri>...] [pkce optional] [consent]
//		                                         # browser sign-in (needs login); public: no secret, PKCE
//		entity <id> [roles <r>...]
//		entity_admin_role <role>...                 # default: admin
//		entity_admin_kind user|client|entity|table:<name>...  # default: user
//		allow   <path>...                        # case-sensitive
//		require <path> role|scope <value>...     # case-insensitive
//		paths   lenient <relaxation>...          # semicolon backslash encoded_slash encoded_dot
//		                                         # trailing_dot double_encoding invalid_utf8 lookalike
//		require <path> dpop                      # a DPoP-bound token and its proof
//		forward_header <Header> <claim>          # sub iss aud exp iat jti client_id scope roles sid kind
//		dpop {                                   # DPoP (RFC 9449) is accepted without this block
//			required                             # every grant and guarded request
//			client <id>...                       # these clients must use DPoP at /token
//			nonce                                # proofs carry a server nonce
//			window <duration>                    # iat skew and jti memory; default 60s
//			algs   <alg>...                      # default ES256 ES384 EdDSA Ed25519 RS256 PS256
//		}
//		throttle off | {                          # on by default, with these defaults:
//			per_ip              30                # free failures per client IP
//			per_account_ip      5                 # free failures per account and client IP
//			per_account         20                # per account, from IPs it never signed in from
//			backoff             1s 15m            # first and longest wait; doubles per failure
//			account_max_backoff 1m                # longest wait per_account imposes
//			forget              15m               # failures forgotten after this quiet time
//			trust               30d               # a sign-in spares its IP from per_account
//			table_size          65536             # entries per table (fixed memory)
//		}
//		hash_budget    <concurrency> [<queue>]   # default: half the CPUs (≥ 1), 4 waiting per slot
//		login [{                                 # browser sign-in: /authorize, the login page, the SSO session
//			session_ttl     <duration>           # idle lifetime, slides with use; default 12h
//			session_max_ttl <duration>           # absolute lifetime; default 7d
//			title           <text>               # on the pages; default: the issuer's host
//			templates       <dir>                # the operator's own page templates
//		}]
//		user_table <name> {
//			driver          sqlite | postgres
//			dsn             <path | dsn>
//			database        <name>
//			table           <table>
//			username_column <column>
//			password_column <column>
//			id_column       <column>
//			roles_column    <column>
//		}
//		endpoint apimaker | eventhos | owin [<path>] {
//			require_role <role>...
//			access_ttl   <duration>
//		}
//	}
//
// Durations take Caddy's units plus d for days (90d). Paths are matched
// after the guard made them canonical; paths servers read differently are
// refused with 400 unless `paths lenient` names their kind. Lists (roles,
// scopes, grants, values) may be space- or comma-separated; redirect URIs
// only space-separated (a URI may hold a comma). A value with spaces is
// quoted (name "Alice Example"). Placeholders such as {env.NAME} are
// expanded at load in store DSNs and master_key.
package caddyfile
