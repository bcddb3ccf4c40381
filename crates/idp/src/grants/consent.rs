//! What a user let an application have (Auth0's user "grants"): recorded when a login grants a
//! client an audience, and revoked by an administrator, which revokes the refresh tokens issued
//! under it too.

use super::Grant;
use crate::util::random_alnum;
use crate::{AppState, Result};
use store::UserGrant;

/// The audience a grant names: the API's, or `/userinfo` for a login that asked for none.
pub fn audience_of(idp: &AppState, audience: Option<&str>) -> String {
    audience.map_or_else(|| idp.config.url("userinfo"), str::to_owned)
}

/// Records (or updates the scope of) the user's grant to `grant`'s client and audience.
pub async fn record(idp: &AppState, grant: &Grant) -> Result<()> {
    let record = UserGrant {
        id: format!("grt_{}", random_alnum(16)),
        user_id: grant.user_id.clone(),
        client_id: grant.client_id.clone(),
        audience: audience_of(idp, grant.audience.as_deref()),
        scope: grant.scope.clone(),
        created_at: idp.now(),
    };
    Ok(idp.store.put_user_grant(&record).await?)
}

/// Deletes a grant and revokes the user's refresh tokens for its client and audience, in one
/// store transaction. `false` when there was no such grant.
pub async fn revoke(idp: &AppState, g: &UserGrant) -> Result<bool> {
    let mut families = Vec::new();
    for t in idp.store.user_refresh_tokens(&g.user_id, idp.now()).await? {
        let audience = serde_json::from_value::<Grant>(t.grant.clone()).ok().and_then(|x| x.audience);
        if t.client_id == g.client_id && audience_of(idp, audience.as_deref()) == g.audience {
            families.push(t.family);
        }
    }
    Ok(idp.store.delete_user_grant(&g.id, &families).await?)
}
