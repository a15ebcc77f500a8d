; Inno Setup 6 script: a per-user installer for dist\Deskbell (no administrator rights).
;
; From the repository root, after `pyinstaller packaging\deskbell.spec`:
;   iscc /DAppVersion=0.1.0 packaging\windows\deskbell.iss
; Signed (the release workflow does this when a certificate is configured):
;   iscc /DAppVersion=0.1.0 /DSign "/Sdeskbell=signtool sign /fd sha256 /td sha256 /tr <timestamp URL> /f <cert.pfx> /p <password> $f" packaging\windows\deskbell.iss
; The programs inside dist\Deskbell must be signed before this runs (they are packed as they are).

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z
#endif

[Setup]
; Never change AppId: Windows finds the installed copy (upgrade, uninstall) by it.
AppId={{98C34C21-61A5-4F4B-B243-24D18B030DFA}
AppName=Deskbell
AppVersion={#AppVersion}
AppVerName=Deskbell {#AppVersion}
AppPublisher=The Deskbell developers
; Per user: %LOCALAPPDATA%\Programs\Deskbell, no UAC prompt, HKCU uninstall entry.
PrivilegesRequired=lowest
DefaultDirName={autopf}\Deskbell
DisableProgramGroupPage=yes
DisableDirPage=auto
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes
SourceDir=..\..
OutputDir=dist
OutputBaseFilename=Deskbell-{#AppVersion}-windows-x64-setup
UninstallDisplayName=Deskbell
UninstallDisplayIcon={app}\Deskbell.exe
; Close a running Deskbell (Restart Manager) before files are replaced or removed.
CloseApplications=yes
RestartApplications=no
#ifdef Sign
SignTool=deskbell
SignedUninstaller=yes
#endif

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "dist\Deskbell\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
; The AppUserModelID must be the one the app sets for itself (resources.APP_ID): it joins the
; taskbar button to this shortcut and lets toast notifications show under Deskbell's name.
Name: "{autoprograms}\Deskbell"; Filename: "{app}\Deskbell.exe"; AppUserModelID: "app.deskbell.Deskbell"
Name: "{autodesktop}\Deskbell"; Filename: "{app}\Deskbell.exe"; AppUserModelID: "app.deskbell.Deskbell"; Tasks: desktopicon

[Registry]
; Start at login is written by the app (Settings); an uninstall removes it, so no login item
; points at a program that is gone. ValueType none: the installer writes nothing here.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: none; ValueName: "Deskbell"; Flags: uninsdeletevalue dontcreatekey

[Run]
Filename: "{app}\Deskbell.exe"; Description: "{cm:LaunchProgram,Deskbell}"; Flags: nowait postinstall skipifsilent
