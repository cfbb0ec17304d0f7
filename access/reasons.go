package access

// Reason codes. Every decision and every refused controller request carries one; the README's
// protocol section and api/openapi.yaml list the same codes (a test checks both against Reasons).
const (
	Granted       = "granted"
	GrantedDuress = "granted_duress" // opened, with a silent alarm
	// Refused before a decision: the request itself is not to be trusted.
	DenyBadSignature = "bad_signature"
	DenyStale        = "stale_timestamp"
	DenyReplay       = "replayed_request"
	DenyUnknownDoor  = "unknown_door"
	DenyBadBody      = "bad_body"
	// The credential.
	DenyUnknown     = "unknown_credential"
	DenyRevoked     = "revoked_credential"
	DenyExpired     = "credential_expired"
	DenyNotYetValid = "credential_not_yet_valid"
	DenyPINLocked   = "pin_locked"
	// A face.
	DenyNoFace       = "no_face"
	DenySpoof        = "liveness_failed"
	DenyNoMatch      = "face_not_recognised"
	DenyAmbiguous    = "face_ambiguous"
	DenyFewFrames    = "face_few_frames"
	DenySecondFactor = "second_factor_required"
	// A plate read at a gate.
	DenyPlateInvalid   = "plate_invalid"
	DenyPlateFewReads  = "plate_few_reads"
	DenyPlateAmbiguous = "plate_ambiguous"
	// The person's rights at the door.
	DenyBlacklisted  = "blacklisted"
	DenyNoRule       = "no_rule"
	DenyLeaseEnded   = "lease_expired"
	DenyLeaseFuture  = "lease_not_started"
	DenySchedule     = "outside_schedule"
	DenyAntiPassback = "anti_passback"
	DenyPINRequired  = "pin_required"
	DenySponsor      = "sponsor_no_right" // a visitor's host may no longer open the door
)

// Reason describes one reason code.
type Reason struct {
	Code  string
	Grant bool
	// Stage is where it is decided: request (signature, time, nonce, door), credential, face or
	// rules.
	Stage   string
	Meaning string
}

// Reasons is the one table of reason codes, in the order a request meets them.
var Reasons = []Reason{
	{DenyBadSignature, false, "request", "the request's signature does not verify with the door's key (or its headers are malformed)"},
	{DenyStale, false, "request", "the request's timestamp is more than 30 s from vigil's clock"},
	{DenyReplay, false, "request", "the request's nonce was already used within the skew window"},
	{DenyUnknownDoor, false, "request", "no door has this id"},
	{DenyBadBody, false, "request", "the body is larger than its kind allows (16 KB; a face photo 6 MB, offline uploads 4 MB) or did not arrive within 10 s"},
	{DenyUnknown, false, "credential", "no live credential has this card number, PIN or QR payload"},
	{DenyRevoked, false, "credential", "the credential was revoked"},
	{DenyExpired, false, "credential", "the credential's validity window has ended"},
	{DenyNotYetValid, false, "credential", "the credential's validity window has not started"},
	{DenyPINLocked, false, "credential", "too many wrong PINs at this door lately: it takes no PIN for a while (cards still work)"},
	{DenyNoFace, false, "face", "no face was found in the photo"},
	{DenySpoof, false, "face", "the face did not pass the liveness check (a photo or a screen)"},
	{DenyNoMatch, false, "face", "the face is not inside the model's door threshold of anyone who may use this door"},
	{DenyAmbiguous, false, "face", "two people who may use this door are both near the face: the runner-up is within the model's margin"},
	{DenyFewFrames, false, "face", "too few frames of the passage agreed on the person (a door camera's face needs two)"},
	{DenySecondFactor, false, "face", "the door's face policy asks for a second factor (a face and a card, PIN or QR of the same person within 30 s) and only one came"},
	{DenyPlateInvalid, false, "plate", "the gate camera's read is not a well-formed plate for its colour (a province, a letter, then 5 letters and digits, 6 on a green plate)"},
	{DenyPlateFewReads, false, "plate", "too few reads of the passage agreed on the plate (a gate needs two, or one sure of every character at 0.95)"},
	{DenyPlateAmbiguous, false, "plate", "under the gate's confusable policy, more than one registered plate is one confusable character from the read"},
	{DenyBlacklisted, false, "rules", "the person is blacklisted"},
	{DenyNoRule, false, "rules", "no rule of the door names the person, their kind, group or unit"},
	{DenyLeaseEnded, false, "rules", "the lease that gives the right has ended (a resident whose every lease has ended opens nothing, whatever the rule)"},
	{DenyLeaseFuture, false, "rules", "the lease that gives the right has not started (nor any other lease of the resident)"},
	{DenySchedule, false, "rules", "the rule that names the person is outside its schedule now"},
	{DenyAntiPassback, false, "rules", "the person already passed this way into the door's area (anti-passback)"},
	{DenyPINRequired, false, "rules", "the rule asks for the card and the same person's PIN, and no valid PIN came with the card"},
	{DenySponsor, false, "rules", "the visitor's invitation is for this door and time, but the resident who issued it may no longer open the door (lease ended, blacklisted, rule removed)"},
	{Granted, true, "rules", "the door opens"},
	{GrantedDuress, true, "rules", "the door opens and a silent duress alarm is raised"},
}
