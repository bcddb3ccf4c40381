/**
 * inject-id-token — post-login Action from Mia-Platform's "Configure Auth0" guide (step 5),
 * with the braces the guide's snippet is missing.
 *
 * Copies the user's app_metadata and user_metadata into the ID token under the MIA_NAMESPACE
 * secret (e.g. "https://cms.example.test/app_metadata"), where auth0-client's
 * customClaimsNamespaces finds them and exposes e.g. `groups` to the CMS.
 */
exports.onExecutePostLogin = async (event, api) => {
  const { user, secrets } = event;
  const { MIA_NAMESPACE } = secrets;
  const { app_metadata, user_metadata } = user;

  // Auth0 hands an empty object rather than undefined when nothing is set, so check both.
  if (!app_metadata || Object.keys(app_metadata).length === 0) {
    console.warn('WARNING: user.app_metadata is empty');
  }

  api.idToken.setCustomClaim(`${MIA_NAMESPACE}app_metadata`, app_metadata);
  api.idToken.setCustomClaim(`${MIA_NAMESPACE}user_metadata`, user_metadata);
};
